//! Operating the scheduler: drains and "why is my task pending?".

use crate::*;
use muster_core::state::NullableBool;
use muster_core::{DrainTarget, ErrorKind};
use muster_sched::BotQuery;

fn gpu_task(name: &str, gpu: &str) -> NewTaskRequest {
    let mut req = task(name, "p", 100);
    req.task_slices = vec![slice("p", &[("gpu", gpu)], 600)];
    req.task_slices[0].wait_for_capacity = true;
    req
}

/// A drained bot finishes its task and gets no other; undrain resumes it.
#[tokio::test]
async fn a_drained_bot_finishes_its_task_and_takes_no_other_until_undrained() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    let first = env.submit(task("first", "p", 100), t(1)).await;
    let second = env.submit(task("second", "p", 100), t(2)).await;
    assert_eq!(run_id(&env.poll("b1", "p", "u1", t(3)).await), Some(first.id));

    let out = env.sched.drain(DrainTarget::Bot("b1".into()), "disk swap", "user:ops", t(4)).await?;
    assert!(out.changed);
    assert_eq!(out.bots, vec!["b1".to_string()]);
    // The running task completes normally.
    let upd = env.update(done("b1", first.id, 0), t(5)).await;
    assert!(upd.ok && !upd.must_stop, "{upd:?}");
    assert_state(&env.result(first.id).await, TaskState::Completed);
    // No new task.
    assert!(is_sleep(&env.poll("b1", "p", "u2", t(6)).await));
    assert_state(&env.result(second.id).await, TaskState::Pending);
    // Shown as maintenance wherever bots are listed.
    let b = env.sched.get_bot("b1", t(6)).expect("known");
    assert_eq!(b.maintenance_msg, "drained (bot b1): disk swap");
    let q = BotQuery { in_maintenance: NullableBool::True, ..Default::default() };
    assert_eq!(env.sched.list_bots(&q, t(6)).items.len(), 1);
    assert_eq!(env.sched.count_bots(&[], t(6)).maintenance, 1);

    // Twice is a no-op.
    let again = env.sched.drain(DrainTarget::Bot("b1".into()), "other", "user:x", t(7)).await?;
    assert!(!again.changed);
    assert_eq!(again.drain.reason, "disk swap");

    let un = env.sched.undrain(DrainTarget::Bot("b1".into()), "user:ops", t(8)).await?;
    assert!(un.changed);
    assert!(!env.sched.undrain(DrainTarget::Bot("b1".into()), "user:ops", t(8)).await?.changed);
    assert_eq!(run_id(&env.poll("b1", "p", "u3", t(9)).await), Some(second.id));
    Ok(())
}

/// Pools and dimension filters; unknown targets are errors; drains survive
/// a restart.
#[tokio::test]
async fn pool_and_dimension_drains_are_durable_and_unknown_targets_fail() -> TestResult {
    let mut env = Env::new().await;
    env.handshake("a1", "a", t(0)).await;
    env.handshake("b1", "b", t(0)).await;
    env.sched.handshake(hello("g1", "b", &[("gpu", &["x"])]), t(0)).await?;

    let err = env.sched.drain(DrainTarget::Pool("nope".into()), "", "u", t(1)).await.expect_err("unknown pool");
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(err.message, "no known bot is in pool \"nope\"");
    let err = env.sched.drain(DrainTarget::Bot("ghost".into()), "", "u", t(1)).await.expect_err("unknown bot");
    assert_eq!(err.message, "no bot \"ghost\" is known");

    let pool = env.sched.drain(DrainTarget::Pool("a".into()), "", "u", t(1)).await?;
    assert_eq!(pool.bots, vec!["a1".to_string()]);
    let gpu = DrainTarget::dimensions(vec![("gpu".into(), "x".into())]);
    assert_eq!(env.sched.drain(gpu.clone(), "", "u", t(1)).await?.bots, vec!["g1".to_string()]);

    env.restart(t(2)).await;
    assert_eq!(env.sched.list_drains().len(), 2);
    env.submit(task("in-a", "a", 100), t(3)).await;
    let mut req = task("in-b", "b", 100);
    req.task_slices[0].properties.dimensions.0.push(("gpu".into(), "x".into()));
    env.submit(req, t(3)).await;
    assert!(is_sleep(&env.poll("a1", "a", "u1", t(4)).await));
    assert!(is_sleep(&env.sched.poll(hello("g1", "b", &[("gpu", &["x"])]), "u1", t(4)).await?));
    Ok(())
}

/// No bot has the dimension: the one ruling bots out, and the values they have.
#[tokio::test]
async fn why_names_the_dimension_no_bot_has() -> TestResult {
    let env = Env::new().await;
    for b in ["g1", "g2"] {
        env.sched.handshake(hello(b, "p", &[("gpu", &["nvidia"])]), t(0)).await?;
    }
    let r = env.submit(gpu_task("a100", "nvidia-a100"), t(1)).await;
    let why = env.sched.why_pending(r.id, t(2)).await?;
    assert_eq!(why.state, TaskState::Pending);
    assert_eq!(why.summary, "no bot has gpu=nvidia-a100; 2 bots have gpu=nvidia");
    let s = &why.slices[0];
    assert!(s.active);
    assert_eq!(s.limiting_dimension, "gpu:nvidia-a100");
    assert_eq!(s.bots.matching, 0);
    assert_eq!((s.queue_position, s.queue_length), (1, 1));
    assert_eq!(s.estimated_start, None);
    Ok(())
}

/// Every matching bot busy: counts, queue position, and an estimate from
/// the rate they took work.
#[tokio::test]
async fn why_says_all_matching_bots_are_busy() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    env.handshake("b2", "p", t(0)).await;
    let one = env.submit(task("one", "p", 100), t(1)).await;
    let two = env.submit(task("two", "p", 100), t(1)).await;
    assert!(run_id(&env.poll("b1", "p", "u1", t(2)).await).is_some());
    assert!(run_id(&env.poll("b2", "p", "u2", t(2)).await).is_some());
    let waiting = env.submit(task("waiting", "p", 100), t(3)).await;
    let later = env.submit(task("later", "p", 100), t(4)).await;
    let why = env.sched.why_pending(later.id, t(5)).await?;
    assert_eq!(why.summary, "all 2 matching bots are busy; 1 task is ahead of it (0 of higher priority)");
    let s = &why.slices[0];
    assert_eq!((s.bots.matching, s.bots.alive, s.bots.busy, s.bots.idle), (2, 2, 2, 0));
    assert_eq!((s.queue_position, s.queue_length, s.ahead), (2, 2, 1));
    // 2 dispatches in the 10-minute window: 0.2 per minute, 2 slots to go.
    assert!((s.dispatches_per_minute - 0.2).abs() < 1e-9, "{}", s.dispatches_per_minute);
    assert_eq!(s.estimated_start, Some(t(5) + chrono::Duration::seconds(600)));
    let first = env.sched.why_pending(waiting.id, t(5)).await?;
    assert_eq!(first.summary, "all 2 matching bots are busy");
    let _ = (one, two);
    Ok(())
}

/// Every matching bot dead (silent past the death timeout).
#[tokio::test]
async fn why_says_all_matching_bots_are_dead() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    env.handshake("b2", "p", t(0)).await;
    let r = env.submit(task("orphan", "p", 100), t(1)).await;
    let why = env.sched.why_pending(r.id, t(700)).await?;
    assert_eq!(why.summary, "all 2 matching bots are dead");
    assert_eq!((why.slices[0].bots.dead, why.slices[0].bots.alive), (2, 0));
    Ok(())
}

/// A higher-priority queue (other dimensions, same bots) is served first.
#[tokio::test]
async fn why_counts_a_higher_priority_queue_ahead() -> TestResult {
    let env = Env::new().await;
    env.sched.handshake(hello("b1", "p", &[("os", &["Linux"])]), t(0)).await?;
    let busy = env.submit(task("running", "p", 100), t(1)).await;
    assert_eq!(run_id(&env.sched.poll(hello("b1", "p", &[("os", &["Linux"])]), "u1", t(2)).await?), Some(busy.id));
    let mine = env.submit(task("mine", "p", 100), t(3)).await;
    for i in 0..3 {
        let mut urgent = task(&format!("urgent{i}"), "p", 10);
        urgent.task_slices[0].properties.dimensions.0.push(("os".into(), "Linux".into()));
        env.submit(urgent, t(4)).await;
    }
    let why = env.sched.why_pending(mine.id, t(5)).await?;
    assert_eq!(why.summary, "the only matching bot is busy; 3 tasks are ahead of it (3 of higher priority)");
    let s = &why.slices[0];
    assert_eq!((s.queue_position, s.queue_length, s.ahead, s.higher_priority_ahead), (1, 1, 3, 3));
    Ok(())
}

/// Finished and unknown tasks get a clear answer.
#[tokio::test]
async fn why_answers_for_finished_and_unknown_tasks() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "p", t(0)).await;
    let r = env.submit(task("quick", "p", 100), t(1)).await;
    assert_eq!(run_id(&env.poll("b1", "p", "u1", t(2)).await), Some(r.id));
    let why = env.sched.why_pending(r.id, t(3)).await?;
    assert_eq!(why.summary, "it is not pending: it is running on bot b1 since 2044-02-03 04:05:08 UTC");
    env.update(done("b1", r.id, 0), t(4)).await;
    let why = env.sched.why_pending(r.id, t(5)).await?;
    assert_eq!(why.summary, "it is not pending: it ended COMPLETED at 2044-02-03 04:05:10 UTC");
    assert!(why.slices.is_empty());
    let err = env.sched.why_pending(TaskId(0x1234560), t(5)).await.expect_err("unknown");
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(err.message, "no task 12345600");
    Ok(())
}

/// NO_RESOURCE: why it could not start, from the same computation.
#[tokio::test]
async fn why_explains_no_resource() -> TestResult {
    let env = Env::new().await;
    env.handshake("b1", "other", t(0)).await;
    let r = env.submit(task("nobody", "p", 100), t(1)).await;
    assert_state(&r, TaskState::NoResource);
    let why = env.sched.why_pending(r.id, t(2)).await?;
    assert_eq!(
        why.summary,
        "no bot could run it when it was created (NO_RESOURCE); now: no bot has pool=p; 1 bot has pool=other"
    );
    Ok(())
}
