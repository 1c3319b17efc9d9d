//! Two schedulers (two server replicas) on one real PostgreSQL: announced
//! changes wake parked bots and carry kills across, a resync (asked for,
//! periodic, or after a failed absorb) finds what an announcement missed, and liveness heard by one replica protects bots and
//! tasks from the other one's sweep.

use crate::*;
use muster_core::TaskState;
use muster_sched::{SchedConfig, Scheduler};
use muster_store::{Changes, Feed, PostgresStore, Store};
use muster_testkit::{wait_for, wait_until, FakeClock, TempPostgres, PATIENCE};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

/// A scheduler on its own connection to the database, following what the
/// other replicas announce through the server's own follow loop
/// (`muster_server::replica::follow`), with no periodic resync to speak of.
async fn replica(url: &str, cfg: SchedConfig) -> (Arc<dyn Store>, Arc<Scheduler>) {
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(url).await.expect("connect"));
    let feed = store.subscribe().await.expect("subscribe").expect("postgres announces changes");
    let sched = Scheduler::start(store.clone(), cfg, t(0)).await.expect("start");
    follow(&sched, feed, Duration::from_secs(3600));
    (store, sched)
}

/// Runs the real follow loop for `sched` on `feed` until the test ends.
fn follow(sched: &Arc<Scheduler>, feed: UnboundedReceiver<Feed>, resync_every: Duration) {
    let clock = Arc::new(FakeClock::new());
    clock.set(t(1));
    let shutdown = CancellationToken::new();
    tokio::spawn(muster_server::replica::follow(sched.clone(), clock, feed, resync_every, shutdown));
}

fn long_poll_cfg() -> SchedConfig {
    SchedConfig { long_poll: PATIENCE * 2, ..cfg() }
}

/// Waits until `cond` holds; failing after [`PATIENCE`], not hanging.
async fn until(cond: impl FnMut() -> bool) {
    wait_until("the replicas to get in step", PATIENCE, cond).await.expect("the replicas got in step");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_submitted_on_one_replica_wakes_a_bot_parked_on_the_other() {
    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    let (_sa, a) = replica(&url, long_poll_cfg()).await;
    let (_sb, b) = replica(&url, long_poll_cfg()).await;
    a.handshake(hello("bot-a", "p", &[]), t(1)).await.expect("handshake on a");
    // b learns of the bot from a's announcement: it has capacity for pool p.
    until(|| b.get_bot("bot-a", t(1)).is_some()).await;

    let parked = {
        let a = a.clone();
        tokio::spawn(async move { a.poll(hello("bot-a", "p", &[]), "poll-1", t(2)).await })
    };
    until(|| a.parked_count() == 1).await;
    let submitted = b.new_task(task("cross", "p", 100), &caller(), t(3)).await.expect("submit on b");
    let submitted = submitted.result.expect("stored");
    assert_state(&submitted, TaskState::Pending);
    // Only the announcement can reach a's parked poll: a's long poll is
    // longer than the test's patience and nothing resyncs.
    let out = tokio::time::timeout(PATIENCE, parked)
        .await
        .expect("the parked poll was not woken")
        .expect("join")
        .expect("poll");
    assert_eq!(run_id(&out), Some(submitted.id), "the parked bot got the task, got {out:?}");
    // b sees the claim too.
    until(|| b.pending_count() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_requested_on_one_replica_reaches_the_bot_through_the_other() {
    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    let (_sa, a) = replica(&url, cfg()).await;
    let (_sb, b) = replica(&url, cfg()).await;
    a.handshake(hello("bot-k", "p", &[]), t(1)).await.expect("handshake");
    let id = a.new_task(task("killme", "p", 100), &caller(), t(1)).await.expect("submit").request.id;
    let out = a.poll(hello("bot-k", "p", &[]), "poll-1", t(2)).await.expect("poll");
    assert_eq!(run_id(&out), Some(id));
    let first = a.task_update(ping("bot-k", id), t(3)).await.expect("update");
    assert!(first.ok && !first.must_stop);

    // b absorbs the claim, then cancels with kill.
    let store_b = b.store().clone();
    wait_for("replica b to absorb the claim and kill the running task", PATIENCE, || async {
        let c = b.cancel_task(id, true, t(4)).await.expect("cancel on b");
        assert!(!c.was_running || c.canceled, "{c:?}");
        Ok(c.was_running.then_some(()))
    })
    .await
    .expect("the kill was requested on b");
    assert!(store_b.get_result(id).await.expect("get").expect("exists").killing);
    // a hears of the kill: the bot's next update there is told to stop.
    wait_for("the kill to reach replica a", PATIENCE, || async {
        let u = a.task_update(ping("bot-k", id), t(5)).await.expect("update");
        assert!(u.ok);
        Ok(u.must_stop.then_some(()))
    })
    .await
    .expect("the bot was told to stop on a");
    let fin = a.task_update(done("bot-k", id, -9), t(6)).await.expect("final");
    assert!(fin.ok);
    let r = store_b.get_result(id).await.expect("get").expect("exists");
    assert_state(&r, TaskState::Killed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_finds_a_task_whose_announcement_was_missed() {
    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    let (_sa, a) = replica(&url, cfg()).await;
    // A writer whose commits are never announced.
    let silent: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.expect("connect").without_announcements());
    let writer = Scheduler::start(silent, cfg(), t(0)).await.expect("start writer");
    let mut req = task("unannounced", "p", 100);
    req.task_slices[0].wait_for_capacity = true;
    let id = writer.new_task(req, &caller(), t(1)).await.expect("submit").request.id;
    a.handshake(hello("bot-r", "p", &[]), t(1)).await.expect("handshake");
    assert_eq!(a.pending_count(), 0, "nothing announced it");
    assert!(is_sleep(&a.poll(hello("bot-r", "p", &[]), "poll-1", t(2)).await.expect("poll")));

    let report = a.resync(t(3)).await.expect("resync");
    assert_eq!(report.tasks, 1);
    assert_eq!(a.pending_count(), 1);
    let out = a.poll(hello("bot-r", "p", &[]), "poll-2", t(4)).await.expect("poll");
    assert_eq!(run_id(&out), Some(id));
    // Nothing else is out of step.
    assert_eq!(a.resync(t(5)).await.expect("resync again"), muster_sched::ResyncReport::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_heard_by_one_replica_is_neither_dead_nor_its_task_abandoned_on_the_other() {
    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    // 600 s death timeout, 1200 s ping tolerance (defaults).
    let (_sa, a) = replica(&url, cfg()).await;
    let (_sb, b) = replica(&url, cfg()).await;
    a.handshake(hello("bot-l", "p", &[]), t(0)).await.expect("handshake");
    let id = a.new_task(task("long", "p", 100), &caller(), t(0)).await.expect("submit").request.id;
    assert_eq!(run_id(&a.poll(hello("bot-l", "p", &[]), "poll-1", t(0)).await.expect("poll")), Some(id));
    until(|| b.get_bot("bot-l", t(0)).is_some_and(|bot| bot.task_id == Some(id))).await;

    // The bot keeps pinging a; a flushes its liveness.
    a.task_update(ping("bot-l", id), t(1000)).await.expect("ping");
    a.flush(t(1000)).await.expect("flush");
    // b's own memory says the bot is silent since t(0), the task since its
    // claim; the store says otherwise.
    let report = b.sweep(t(1300)).await.expect("sweep on b");
    assert_eq!((report.bots_dead, report.tasks_bot_died), (0, 0), "{report:?}");
    assert!(!b.get_bot("bot-l", t(1300)).expect("known").is_dead);
    assert_state(&b.store().get_result(id).await.expect("get").expect("exists"), TaskState::Running);

    // Once the bot really is silent past both limits, b acts.
    let report = b.sweep(t(2300)).await.expect("sweep on b");
    assert_eq!(report.bots_dead, 1, "{report:?}");
    assert_state(&b.store().get_result(id).await.expect("get").expect("exists"), TaskState::BotDied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_reply_died_with_its_replica_is_handed_back_by_the_other() {
    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    let (_sa, a) = replica(&url, cfg()).await;
    // b follows nothing: it cannot have absorbed a's claim when the bot arrives.
    let store_b: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.expect("connect b"));
    let b = Scheduler::start(store_b, cfg(), t(0)).await.expect("start b");
    a.handshake(hello("bot-f", "p", &[]), t(1)).await.expect("handshake");
    let first = a.new_task(task("first", "p", 100), &caller(), t(1)).await.expect("submit").request.id;
    let second = a.new_task(task("second", "p", 100), &caller(), t(2)).await.expect("submit").request.id;
    // a commits the claim; its reply never reaches the bot.
    assert_eq!(run_id(&a.poll(hello("bot-f", "p", &[]), "lost-reply", t(3)).await.expect("poll")), Some(first));

    // The bot retries the same poll on b: it gets the same task, not another.
    let again = b.poll(hello("bot-f", "p", &[]), "lost-reply", t(3)).await.expect("retry on b");
    assert_eq!(run_id(&again), Some(first), "got {again:?}");
    assert!(b.task_update(done("bot-f", first, 0), t(4)).await.expect("final").ok);
    assert_state(&b.store().get_result(first).await.expect("get").expect("exists"), TaskState::Completed);
    // And b goes on with the rest (it absorbs `second` by resync here).
    b.resync(t(5)).await.expect("resync");
    assert_eq!(run_id(&b.poll(hello("bot-f", "p", &[]), "next", t(5)).await.expect("poll")), Some(second));
}

/// A scheduler on the database whose commits are never announced, and a
/// task it submits (waiting for capacity).
async fn unannounced_task(url: &str) -> muster_core::TaskId {
    let silent: Arc<dyn Store> = Arc::new(PostgresStore::connect(url).await.expect("connect").without_announcements());
    let writer = Scheduler::start(silent, cfg(), t(0)).await.expect("start writer");
    let mut req = task("unannounced", "p", 100);
    req.task_slices[0].wait_for_capacity = true;
    writer.new_task(req, &caller(), t(1)).await.expect("submit").request.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_resync_finds_what_no_announcement_carried() {
    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.expect("connect"));
    let a = Scheduler::start(store, cfg(), t(0)).await.expect("start");
    // A feed on which nothing ever arrives: only the interval can help.
    let (_quiet, feed) = tokio::sync::mpsc::unbounded_channel();
    follow(&a, feed, Duration::from_millis(200));
    let id = unannounced_task(&url).await;
    until(|| a.pending_count() == 1).await;
    a.handshake(hello("bot-p", "p", &[]), t(2)).await.expect("handshake");
    assert_eq!(run_id(&a.poll(hello("bot-p", "p", &[]), "poll-1", t(2)).await.expect("poll")), Some(id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_absorb_is_followed_by_a_full_resync() {
    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.expect("connect"));
    let a = Scheduler::start(store, cfg(), t(0)).await.expect("start");
    let (announce, feed) = tokio::sync::mpsc::unbounded_channel();
    // The periodic resync is far away: only the one after the failure can
    // find the unannounced task.
    follow(&a, feed, Duration::from_secs(3600));
    let id = unannounced_task(&url).await;
    // PostgreSQL refuses a NUL byte in text: reading this bot fails, and so
    // does absorbing the batch.
    let bad = Changes { tasks: vec![], bots: vec!["bad\0bot".into()], drains: false };
    assert!(a.apply_changes(&bad, t(1)).await.is_err(), "the absorb must fail for this test to mean anything");
    assert_eq!(a.pending_count(), 0);
    announce.send(Feed::Changed(bad)).expect("the follow loop listens");
    until(|| a.pending_count() == 1).await;
    a.handshake(hello("bot-x", "p", &[]), t(2)).await.expect("handshake");
    assert_eq!(run_id(&a.poll(hello("bot-x", "p", &[]), "poll-1", t(2)).await.expect("poll")), Some(id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_put_or_lifted_on_one_replica_is_in_force_on_the_other_without_a_resync() {
    use muster_core::DrainTarget;
    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    let (_sa, a) = replica(&url, cfg()).await;
    let (_sb, b) = replica(&url, cfg()).await;
    a.handshake(hello("bot-d", "p", &[]), t(1)).await.expect("handshake");
    until(|| b.get_bot("bot-d", t(1)).is_some()).await;
    a.drain(DrainTarget::Pool("p".into()), "kernel upgrade", "user:ops@example.com", t(2)).await.expect("drain on a");
    // Only the announcement can carry it: b's periodic resync is an hour away.
    until(|| b.list_drains().iter().any(|d| d.target == DrainTarget::Pool("p".into()))).await;
    a.undrain(DrainTarget::Pool("p".into()), "user:ops@example.com", t(3)).await.expect("undrain on a");
    until(|| b.list_drains().is_empty()).await;
}
