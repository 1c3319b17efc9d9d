//! One scenario per scheduling rule.

use crate::*;
use muster_core::state::NullableBool;
use muster_sched::{BotQuery, TaskErrorOp};
use muster_testkit::{wait_until, PATIENCE};

/// A bot gets the task with the lowest priority number first.
#[tokio::test]
async fn the_most_urgent_task_is_dispatched_first() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    let low = env.submit(task("low", "p", 200), t(1)).await;
    let high = env.submit(task("high", "p", 20), t(2)).await;
    let out = env.poll("b1", "p", "u1", t(3)).await;
    assert_eq!(run_id(&out), Some(high.id));
    env.update(done("b1", high.id, 0), t(4)).await;
    let out = env.poll("b1", "p", "u2", t(5)).await;
    assert_eq!(run_id(&out), Some(low.id));
    Ok(())
}

/// Within one priority, the oldest task runs first.
#[tokio::test]
async fn tasks_of_equal_priority_run_oldest_first() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    let first = env.submit(task("a", "p", 100), t(1)).await;
    let second = env.submit(task("b", "p", 100), t(2)).await;
    let third = env.submit(task("c", "p", 100), t(3)).await;
    let mut got = Vec::new();
    for (i, now) in [(1, 10), (2, 20), (3, 30)] {
        let out = env.poll("b1", "p", &format!("u{i}"), t(now)).await;
        let id = run_id(&out).expect("a task");
        env.update(done("b1", id, 0), t(now + 1)).await;
        got.push(id);
    }
    assert_eq!(got, vec![first.id, second.id, third.id]);
    Ok(())
}

/// `os:Mac|Linux` matches a Linux bot but not a Windows one.
#[tokio::test]
async fn or_dimensions_match_any_listed_value() -> TestResult {
    let env = Env::new().await;
    env.sched.handshake(hello("win", "p", &[("os", &["Windows"])]), t(0)).await?;
    env.sched.handshake(hello("lin", "p", &[("os", &["Linux"])]), t(0)).await?;
    let mut req = task("or", "p", 100);
    req.task_slices = vec![slice("p", &[("os", "Mac|Linux")], 600)];
    let r = env.submit(req, t(1)).await;
    assert_state(&r, TaskState::Pending);
    let out = env.sched.poll(hello("win", "p", &[("os", &["Windows"])]), "w1", t(2)).await?;
    assert!(is_sleep(&out), "windows bot must not get it: {out:?}");
    let out = env.sched.poll(hello("lin", "p", &[("os", &["Linux"])]), "l1", t(3)).await?;
    assert_eq!(run_id(&out), Some(r.id));
    Ok(())
}

/// When the first slice expires, the task falls back to the next slice.
#[tokio::test]
async fn an_expired_slice_falls_back_to_the_next_slice() -> TestResult {
    let env = Env::new().await;
    env.sched.handshake(hello("gpu", "p", &[("gpu", &["yes"])]), t(0)).await?;
    env.handshake("plain", "p", t(0)).await;
    let mut req = task("fallback", "p", 100);
    req.task_slices = vec![slice("p", &[("gpu", "yes")], 60), slice("p", &[], 600)];
    let r = env.submit(req, t(0)).await;
    assert_eq!(r.current_slice, 0);
    let out = env.poll("plain", "p", "u1", t(10)).await;
    assert!(is_sleep(&out), "slice 0 needs a gpu: {out:?}");
    let rep = env.sched.sweep(t(61)).await?;
    assert_eq!(rep.slices_expired, 1);
    let after = env.result(r.id).await;
    assert_state(&after, TaskState::Pending);
    assert_eq!(after.current_slice, 1);
    let out = env.poll("plain", "p", "u2", t(62)).await;
    assert_eq!(run_id(&out), Some(r.id));
    Ok(())
}

/// A task whose last slice passes its deadline is EXPIRED.
#[tokio::test]
async fn a_task_nobody_takes_expires() -> TestResult {
    let env = Env::new().await;
    env.handshake("busy", "p", t(0)).await;
    let mut req = task("exp", "p", 100);
    req.task_slices = vec![slice("p", &[], 60)];
    let r = env.submit(req, t(0)).await;
    assert!(env.sched.sweep(t(59)).await?.slices_expired == 0);
    assert_state(&env.result(r.id).await, TaskState::Pending);
    let rep = env.sched.sweep(t(61)).await?;
    assert_eq!(rep.slices_expired, 1);
    let after = env.result(r.id).await;
    assert_state(&after, TaskState::Expired);
    assert_eq!(after.abandoned, Some(t(61)));
    assert_eq!(after.completed, Some(t(61)));
    let out = env.poll("busy", "p", "u1", t(62)).await;
    assert!(is_sleep(&out), "an expired task is never dispatched: {out:?}");
    Ok(())
}

/// No matching live bot: NO_RESOURCE, unless the slice waits for capacity.
#[tokio::test]
async fn no_matching_bot_means_no_resource_unless_waiting_for_capacity() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "other", t(0)).await;
    let r = env.submit(task("nobody", "p", 100), t(1)).await;
    assert_state(&r, TaskState::NoResource);
    assert_eq!(r.completed, Some(t(1)));
    assert_state(&env.result(r.id).await, TaskState::NoResource);

    let mut req = task("waits", "p", 100);
    req.task_slices[0].wait_for_capacity = true;
    let w = env.submit(req, t(2)).await;
    assert_state(&w, TaskState::Pending);
    env.handshake("b2", "p", t(3)).await;
    let out = env.poll("b2", "p", "u1", t(4)).await;
    assert_eq!(run_id(&out), Some(w.id));
    Ok(())
}

/// An identical idempotent task that succeeded is reused, not rerun.
#[tokio::test]
async fn an_identical_idempotent_successful_task_is_deduplicated() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    let mut req = task("idem", "p", 100);
    req.task_slices[0].properties.idempotent = true;
    let first = env.submit(req.clone(), t(1)).await;
    let out = env.poll("b1", "p", "u1", t(2)).await;
    assert_eq!(run_id(&out), Some(first.id));
    let mut fin = done("b1", first.id, 0);
    fin.cost_usd = Some(0.25);
    env.update(fin, t(3)).await;

    let second = env.submit(req.clone(), t(10)).await;
    assert_state(&second, TaskState::Completed);
    assert_ne!(second.id, first.id);
    assert_eq!(second.deduped_from, first.id.run_id());
    assert_eq!(second.try_number, Some(0));
    assert_eq!(second.exit_code, Some(0));
    assert_eq!(second.output_of, first.id);
    assert_eq!(second.cost_saved_usd, 0.25);
    assert_eq!(second.bot_id, "b1");

    // A failed run is not reusable.
    let mut other = req.clone();
    other.task_slices[0].properties.command = vec!["false".to_string()];
    let failing = env.submit(other.clone(), t(20)).await;
    let out = env.poll("b1", "p", "u2", t(21)).await;
    assert_eq!(run_id(&out), Some(failing.id));
    env.update(done("b1", failing.id, 1), t(22)).await;
    let again = env.submit(other, t(23)).await;
    assert_state(&again, TaskState::Pending);
    Ok(())
}

/// Submitting twice with the same request_uuid returns the same task.
#[tokio::test]
async fn a_repeated_request_uuid_returns_the_original_task() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    let mut req = task("once", "p", 100);
    req.request_uuid = "9a1b".to_string();
    let a = env.submit(req.clone(), t(1)).await;
    let b = env.submit(req.clone(), t(2)).await;
    assert_eq!(a.id, b.id);
    assert_eq!(env.sched.pending_count(), 1);
    let other = Caller { identity: "user:someone-else@example.com".to_string(), high_priority_allowed: false };
    let c = env.sched.new_task(req, &other, t(3)).await?.result.expect("stored");
    assert_ne!(c.id, a.id, "the key is scoped by caller identity");
    Ok(())
}

/// evaluate_only stores nothing.
#[tokio::test]
async fn evaluate_only_stores_nothing() -> TestResult {
    let env = Env::new().await;
    let mut req = task("dry", "p", 100);
    req.evaluate_only = true;
    let out = env.sched.new_task(req, &caller(), t(1)).await?;
    assert!(out.result.is_none());
    assert!(env.store.get_result(out.request.id).await?.is_none());
    Ok(())
}

/// Canceling a pending task makes it CANCELED and undispatchable.
#[tokio::test]
async fn canceling_a_pending_task_removes_it_from_the_queue() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    let r = env.submit(task("c", "p", 100), t(1)).await;
    let out = env.sched.cancel_task(r.id, false, t(2)).await?;
    assert!(out.canceled && !out.was_running);
    let after = env.result(r.id).await;
    assert_state(&after, TaskState::Canceled);
    assert_eq!(after.abandoned, Some(t(2)));
    assert!(is_sleep(&env.poll("b1", "p", "u1", t(3)).await));
    let again = env.sched.cancel_task(r.id, true, t(4)).await?;
    assert!(!again.canceled && !again.was_running, "final tasks are not canceled again");
    Ok(())
}

/// Killing a running task: the bot is told must_stop, its report gives KILLED.
#[tokio::test]
async fn killing_a_running_task_stops_the_bot_and_ends_killed() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    let r = env.submit(task("k", "p", 100), t(1)).await;
    assert_eq!(run_id(&env.poll("b1", "p", "u1", t(2)).await), Some(r.id));
    assert!(!env.update(ping("b1", r.id), t(3)).await.must_stop);

    let no = env.sched.cancel_task(r.id, false, t(4)).await?;
    assert!(!no.canceled && no.was_running, "without kill_running nothing happens");
    let yes = env.sched.cancel_task(r.id, true, t(5)).await?;
    assert!(yes.canceled && yes.was_running);
    let twice = env.sched.cancel_task(r.id, true, t(6)).await?;
    assert!(!twice.canceled && twice.was_running);
    assert_state(&env.result(r.id).await, TaskState::Running);

    let reply = env.update(ping("b1", r.id), t(7)).await;
    assert!(reply.ok && reply.must_stop);
    let reply = env.update(done("b1", r.id, -15), t(8)).await;
    assert!(reply.ok);
    let after = env.result(r.id).await;
    assert_state(&after, TaskState::Killed);
    assert_eq!(after.exit_code, Some(-15));
    assert_eq!(after.abandoned, Some(t(5)));
    assert!(env.sched.get_bot("b1", t(9)).expect("bot").task_id.is_none(), "bot freed");
    Ok(())
}

/// A running task whose bot stops pinging becomes BOT_DIED.
#[tokio::test]
async fn a_running_task_without_pings_becomes_bot_died() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    let mut req = task("quiet", "p", 100);
    req.bot_ping_tolerance_secs = 60;
    let r = env.submit(req, t(1)).await;
    assert_eq!(run_id(&env.poll("b1", "p", "u1", t(2)).await), Some(r.id));
    env.update(ping("b1", r.id), t(50)).await;
    assert_eq!(env.sched.sweep(t(100)).await?.tasks_bot_died, 0, "the ping at 50 s extends the deadline");
    let rep = env.sched.sweep(t(111)).await?;
    assert_eq!(rep.tasks_bot_died, 1);
    let after = env.result(r.id).await;
    assert_state(&after, TaskState::BotDied);
    assert!(after.internal_failure);
    let late = env.update(done("b1", r.id, 0), t(112)).await;
    assert!(!late.ok && late.must_stop, "a late report changes nothing");
    assert_state(&env.result(r.id).await, TaskState::BotDied);
    Ok(())
}

/// A bot silent past the death timeout is dead and its task BOT_DIED.
#[tokio::test]
async fn a_silent_bot_is_declared_dead_and_its_task_dies() -> TestResult {
    let mut c = cfg();
    c.bot_death_timeout = Duration::from_secs(300);
    let env = Env::with_cfg(c).await;
    env.handshake("b1", "p", t(0)).await;
    env.handshake("b2", "p", t(0)).await;
    let r = env.submit(task("orphan", "p", 100), t(1)).await;
    assert_eq!(run_id(&env.poll("b1", "p", "u1", t(2)).await), Some(r.id));
    env.poll("b2", "p", "v1", t(250)).await;
    let rep = env.sched.sweep(t(303)).await?;
    assert_eq!(rep.bots_dead, 1);
    assert_eq!(rep.tasks_bot_died, 1);
    assert!(env.sched.get_bot("b1", t(303)).expect("b1").is_dead);
    assert!(!env.sched.get_bot("b2", t(303)).expect("b2").is_dead);
    assert_state(&env.result(r.id).await, TaskState::BotDied);
    let dead = BotQuery { is_dead: NullableBool::True, ..Default::default() };
    let page = env.sched.list_bots(&dead, t(303));
    assert_eq!(page.items.iter().map(|b| b.bot_id.as_str()).collect::<Vec<_>>(), vec!["b1"]);
    Ok(())
}

/// A parked poll is handed a matching task the moment it is submitted.
#[tokio::test]
async fn a_parked_poll_is_woken_at_once_by_a_matching_submit() -> TestResult {
    let mut c = cfg();
    c.long_poll = Duration::from_secs(30);
    let env = Env::with_cfg(c).await;
    env.handshake("b1", "p", t(0)).await;
    let sched = env.sched.clone();
    let poll = tokio::spawn(async move { sched.poll(hello("b1", "p", &[]), "u1", t(1)).await });
    wait_until("the poll to park", PATIENCE, || env.sched.parked_count() == 1).await?;
    let r = env.submit(task("now", "p", 100), t(2)).await;
    let out = tokio::time::timeout(Duration::from_secs(20), poll).await.expect("poll returned (hang guard)")??;
    assert_eq!(run_id(&out), Some(r.id));
    assert_state(&env.result(r.id).await, TaskState::Running);
    Ok(())
}

/// Two bots polling for one task: exactly one gets it.
#[tokio::test]
async fn two_bots_racing_for_one_task_exactly_one_wins() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    env.handshake("b2", "p", t(0)).await;
    let r = env.submit(task("one", "p", 100), t(1)).await;
    let (a, b) = tokio::join!(env.poll("b1", "p", "u1", t(2)), env.poll("b2", "p", "u2", t(2)));
    let winners: Vec<TaskId> = [run_id(&a), run_id(&b)].into_iter().flatten().collect();
    assert_eq!(winners, vec![r.id]);
    let stored = env.result(r.id).await;
    assert_state(&stored, TaskState::Running);
    let winner = if run_id(&a).is_some() { "b1" } else { "b2" };
    assert_eq!(stored.bot_id, winner);
    Ok(())
}

/// A poll retried with the same request_uuid gets the same task.
#[tokio::test]
async fn a_retried_poll_gets_the_same_task() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    let r1 = env.submit(task("x", "p", 100), t(1)).await;
    let _r2 = env.submit(task("y", "p", 100), t(2)).await;
    let a = env.poll("b1", "p", "same", t(3)).await;
    let b = env.poll("b1", "p", "same", t(4)).await;
    assert_eq!(run_id(&a), Some(r1.id));
    assert_eq!(run_id(&b), Some(r1.id));
    assert_eq!(env.result(r1.id).await.claim_id, "same");
    Ok(())
}

/// A poll with a new uuid before the bot ever started its task gets it again;
/// once the bot reported on it, a new poll abandons it.
#[tokio::test]
async fn an_unstarted_assignment_is_redelivered_and_a_started_one_abandoned() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    let r = env.submit(task("x", "p", 100), t(1)).await;
    assert_eq!(run_id(&env.poll("b1", "p", "u1", t(2)).await), Some(r.id));
    assert_eq!(run_id(&env.poll("b1", "p", "u2", t(3)).await), Some(r.id), "lost reply: same manifest");
    env.update(ping("b1", r.id), t(4)).await;
    // Still reporting (within LIVE_TASK_WINDOW): another process runs it.
    let out = env.poll("b1", "p", "u3", t(5)).await;
    assert!(is_sleep(&out));
    assert_state(&env.result(r.id).await, TaskState::Running);
    // Silent past the window: the task died.
    let out = env.poll("b1", "p", "u4", t(4 + 61)).await;
    assert!(is_sleep(&out));
    assert_state(&env.result(r.id).await, TaskState::BotDied);
    Ok(())
}

/// Only the bot running a task may update it.
#[tokio::test]
async fn a_task_update_from_a_bot_that_does_not_own_the_task_is_refused() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    env.handshake("intruder", "p", t(0)).await;
    let r = env.submit(task("mine", "p", 100), t(1)).await;
    assert_eq!(run_id(&env.poll("b1", "p", "u1", t(2)).await), Some(r.id));
    let reply = env.update(done("intruder", r.id, 0), t(3)).await;
    assert!(!reply.ok && reply.must_stop);
    let after = env.result(r.id).await;
    assert_state(&after, TaskState::Running);
    assert!(env.store.read_output(r.id, 0, 100).await?.is_empty(), "no output written");
    Ok(())
}

/// A final packet sent twice is accepted once and changes nothing the second time.
#[tokio::test]
async fn a_retried_final_update_is_idempotent() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    let r = env.submit(task("fin", "p", 100), t(1)).await;
    assert_eq!(run_id(&env.poll("b1", "p", "u1", t(2)).await), Some(r.id));
    let first = env.update(done("b1", r.id, 3), t(3)).await;
    assert!(first.ok && !first.must_stop);
    let once = env.result(r.id).await;
    assert_state(&once, TaskState::Completed);
    assert!(once.failure);
    assert_eq!(once.exit_code, Some(3));
    let second = env.update(done("b1", r.id, 3), t(9)).await;
    assert_eq!(second, first);
    let twice = env.result(r.id).await;
    assert_eq!(twice.version, once.version);
    assert_eq!(twice.completed, Some(t(3)));
    assert_eq!(env.store.read_output(r.id, 0, 100).await?, b"hello\n");
    Ok(())
}

/// Missing CAS inputs end the task CLIENT_ERROR; other errors BOT_DIED.
#[tokio::test]
async fn a_task_error_ends_the_task_client_error_or_bot_died() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    let a = env.submit(task("a", "p", 100), t(1)).await;
    let b = env.submit(task("b", "p", 100), t(2)).await;
    assert_eq!(run_id(&env.poll("b1", "p", "u1", t(3)).await), Some(a.id));
    let op = TaskErrorOp {
        bot_id: "b1".into(),
        task_id: a.id,
        message: "missing".into(),
        missing_cas: vec![Default::default()],
        ..Default::default()
    };
    env.sched.task_error(op, t(4)).await?;
    assert_state(&env.result(a.id).await, TaskState::ClientError);
    assert_eq!(run_id(&env.poll("b1", "p", "u2", t(5)).await), Some(b.id));
    env.sched.task_error(TaskErrorOp { bot_id: "b1".into(), task_id: b.id, ..Default::default() }, t(6)).await?;
    assert_state(&env.result(b.id).await, TaskState::BotDied);
    Ok(())
}

/// TerminateBot creates one termination task, delivered as `terminate`.
#[tokio::test]
async fn terminate_bot_creates_one_task_the_bot_receives_as_terminate() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    let id = env.sched.terminate_bot("b1", "maintenance", t(1)).await?;
    let again = env.sched.terminate_bot("b1", "again", t(2)).await?;
    assert_eq!(id, again, "a pending termination task is reused");
    let req = env.store.get_request(id).await?.expect("request");
    assert_eq!(req.priority, 0);
    assert_eq!(req.name, "Terminate b1: maintenance");
    assert!(req.is_termination());
    let out = env.poll("b1", "p", "u1", t(3)).await;
    assert!(matches!(out, PollOutcome::Terminate { task_id } if task_id == id), "{out:?}");
    env.update(TaskUpdateOp { exit_code: Some(0), duration: Some(0.0), ..ping("b1", id) }, t(4)).await;
    assert_state(&env.result(id).await, TaskState::Completed);
    Ok(())
}

/// After a restart, pending tasks are still dispatched and running ones kept.
#[tokio::test]
async fn a_restart_keeps_pending_and_running_tasks() -> TestResult {
    let mut env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    env.handshake("b2", "p", t(0)).await;
    let running = env.submit(task("running", "p", 100), t(1)).await;
    assert_eq!(run_id(&env.poll("b1", "p", "u1", t(2)).await), Some(running.id));
    let mut long = task("pending", "p", 100);
    long.task_slices[0].expiration_secs = 3600;
    let pending = env.submit(long, t(3)).await;

    env.restart(t(700)).await;
    // Long after the death timeout in stored time, the grace keeps the fleet.
    let rep = env.sched.sweep(t(701)).await?;
    assert_eq!(rep, Default::default(), "nothing dies right after a restart");
    assert_eq!(env.sched.get_bot("b1", t(701)).expect("b1").task_id, Some(running.id));
    assert_eq!(run_id(&env.poll("b1", "p", "u1", t(702)).await), Some(running.id), "claim_id survives");
    let reply = env.update(ping("b1", running.id), t(703)).await;
    assert!(reply.ok && !reply.must_stop);
    assert_eq!(run_id(&env.poll("b2", "p", "v1", t(704)).await), Some(pending.id));
    env.update(done("b1", running.id, 0), t(705)).await;
    assert_state(&env.result(running.id).await, TaskState::Completed);
    Ok(())
}

/// A bot reconnecting while the server thinks it runs a task: that task died.
#[tokio::test]
async fn a_handshake_abandons_the_task_the_bot_was_running() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    let r = env.submit(task("x", "p", 100), t(1)).await;
    assert_eq!(run_id(&env.poll("b1", "p", "u1", t(2)).await), Some(r.id));
    // A handshake while the task still reports does not kill it.
    env.handshake("b1", "p", t(3)).await;
    assert_state(&env.result(r.id).await, TaskState::Running);
    // Once it has been silent past LIVE_TASK_WINDOW, a handshake abandons it.
    env.handshake("b1", "p", t(2 + 61)).await;
    assert_state(&env.result(r.id).await, TaskState::BotDied);
    assert!(env.sched.get_bot("b1", t(63)).expect("bot").task_id.is_none());
    Ok(())
}

/// Quarantined bots get no task.
#[tokio::test]
async fn a_quarantined_bot_gets_no_task() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    env.submit(task("x", "p", 100), t(1)).await;
    let mut h = hello("b1", "p", &[]);
    h.quarantined_msg = "disk full".into();
    let out = env.sched.poll(h, "u1", t(2)).await?;
    assert!(matches!(out, PollOutcome::Sleep { quarantined: true, .. }), "{out:?}");
    assert_eq!(env.sched.pending_count(), 1);
    Ok(())
}

/// ListBots pages in bot id order; CountBots and DeleteBot agree.
#[tokio::test]
async fn bots_are_listed_in_id_order_and_can_be_deleted() -> TestResult {
    let env = Env::new().await;
    for b in ["c", "a", "b"] {
        env.handshake(b, "p", t(0)).await;
    }
    let page = env.sched.list_bots(&BotQuery { limit: 2, ..Default::default() }, t(1));
    assert_eq!(page.items.iter().map(|b| b.bot_id.as_str()).collect::<Vec<_>>(), vec!["a", "b"]);
    let rest = env.sched.list_bots(&BotQuery { limit: 2, cursor: page.cursor, ..Default::default() }, t(1));
    assert_eq!(rest.items.iter().map(|b| b.bot_id.as_str()).collect::<Vec<_>>(), vec!["c"]);
    assert!(rest.cursor.is_none());
    assert_eq!(env.sched.count_bots(&[], t(1)).count, 3);
    assert!(env.sched.delete_bot("b", t(2)).await?);
    assert!(!env.sched.delete_bot("b", t(2)).await?);
    assert_eq!(env.sched.count_bots(&[], t(3)).count, 2);
    assert!(env.store.get_bot("b").await?.is_none());
    let dims = env.sched.bot_dimensions(Some("p"));
    assert!(dims.iter().any(|(k, v)| k == "id" && v == &vec!["a".to_string(), "c".to_string()]));
    Ok(())
}

/// Two schedulers on one store (replicas) both see the task: the store's
/// compare-and-set lets exactly one bot claim it.
#[tokio::test]
async fn two_replicas_racing_for_one_task_commit_exactly_one_claim() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    let r = env.submit(task("one", "p", 100), t(1)).await;
    let other = Scheduler::start(env.store.clone(), cfg(), t(1)).await?;
    other.handshake(hello("b2", "p", &[]), t(1)).await?;
    assert_eq!(other.pending_count(), 1, "the replica rebuilt the pending task");
    let (a, b) =
        tokio::join!(env.sched.poll(hello("b1", "p", &[]), "u1", t(2)), other.poll(hello("b2", "p", &[]), "u2", t(2)),);
    let winners: Vec<TaskId> = [run_id(&a?), run_id(&b?)].into_iter().flatten().collect();
    assert_eq!(winners, vec![r.id]);
    assert_state(&env.result(r.id).await, TaskState::Running);
    Ok(())
}

/// A second poll of the same bot replaces the first parked one; the first
/// answers sleep and the second still gets the next task.
#[tokio::test]
async fn a_newer_parked_poll_of_the_same_bot_replaces_the_older_one() -> TestResult {
    let mut c = cfg();
    c.long_poll = Duration::from_secs(30);
    let env = Env::with_cfg(c).await;
    env.handshake("b1", "p", t(0)).await;
    let s1 = env.sched.clone();
    let first = tokio::spawn(async move { s1.poll(hello("b1", "p", &[]), "u1", t(1)).await });
    wait_until("the poll to park", PATIENCE, || env.sched.parked_count() == 1).await?;
    let s2 = env.sched.clone();
    let second = tokio::spawn(async move { s2.poll(hello("b1", "p", &[]), "u2", t(2)).await });
    let old =
        tokio::time::timeout(Duration::from_secs(20), first).await.expect("first poll returned (hang guard)")??;
    assert!(is_sleep(&old), "{old:?}");
    let r = env.submit(task("x", "p", 100), t(3)).await;
    let new =
        tokio::time::timeout(Duration::from_secs(20), second).await.expect("second poll returned (hang guard)")??;
    assert_eq!(run_id(&new), Some(r.id));
    Ok(())
}

/// A first slice nobody can run is skipped at submission.
#[tokio::test]
async fn a_slice_without_capacity_is_skipped_at_submission() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    let mut req = task("skip", "p", 100);
    req.task_slices = vec![slice("p", &[("gpu", "yes")], 60), slice("p", &[], 600)];
    let r = env.submit(req, t(1)).await;
    assert_state(&r, TaskState::Pending);
    assert_eq!(r.current_slice, 1);
    assert_eq!(run_id(&env.poll("b1", "p", "u1", t(2)).await), Some(r.id));
    Ok(())
}

/// A bot announcing shutdown abandons the task it was running.
#[tokio::test]
async fn a_bot_shutdown_event_abandons_its_task() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    let r = env.submit(task("x", "p", 100), t(1)).await;
    assert_eq!(run_id(&env.poll("b1", "p", "u1", t(2)).await), Some(r.id));
    env.sched.bot_event(hello("b1", "p", &[]), "bot_log", "hello", t(3)).await?;
    assert_state(&env.result(r.id).await, TaskState::Running);
    env.sched.bot_event(hello("b1", "p", &[]), "bot_shutdown", "bye", t(4)).await?;
    assert_state(&env.result(r.id).await, TaskState::BotDied);
    Ok(())
}
