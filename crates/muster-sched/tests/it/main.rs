//! Scenario tests of the scheduler's rules, against a real SQLite store in a
//! temp directory. Time is driven by explicit `now` values (2044).

mod ops;
mod replicas;
mod scenarios;

use anyhow::Result;
use chrono::TimeZone;
use muster_core::task::{NewTaskRequest, TaskProperties, TaskSlice};
use muster_core::{BotDimensions, TaskDimensions, TaskId, TaskResult, TaskState, Time};
use muster_sched::{BotHello, Caller, PollOutcome, SchedConfig, Scheduler, TaskUpdateOp};
use muster_store::{SqliteStore, Store};
use std::sync::Arc;
use std::time::Duration;

/// A scheduler on a fresh SQLite store.
pub struct Env {
    _dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub sched: Arc<Scheduler>,
}

pub fn cfg() -> SchedConfig {
    SchedConfig { long_poll: Duration::from_millis(50), idle_sleep: Duration::from_secs(1), ..SchedConfig::default() }
}

impl Env {
    pub async fn new() -> Env {
        Env::with_cfg(cfg()).await
    }

    pub async fn with_cfg(cfg: SchedConfig) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("muster.db")).expect("open store"));
        let sched = Scheduler::start(store.clone(), cfg, t(0)).await.expect("start");
        Env { _dir: dir, store, sched }
    }

    /// Drops the scheduler and starts a new one on the same store.
    pub async fn restart(&mut self, now: Time) {
        let cfg = self.sched.config().clone();
        self.sched = Scheduler::start(self.store.clone(), cfg, now).await.expect("restart");
    }

    pub async fn result(&self, id: TaskId) -> TaskResult {
        self.store.get_result(id).await.expect("get_result").expect("task exists")
    }

    pub async fn submit(&self, req: NewTaskRequest, now: Time) -> TaskResult {
        self.sched.new_task(req, &caller(), now).await.expect("new_task").result.expect("stored")
    }

    pub async fn handshake(&self, bot: &str, pool: &str, now: Time) {
        self.sched.handshake(hello(bot, pool, &[]), now).await.expect("handshake");
    }

    pub async fn poll(&self, bot: &str, pool: &str, uuid: &str, now: Time) -> PollOutcome {
        self.sched.poll(hello(bot, pool, &[]), uuid, now).await.expect("poll")
    }

    pub async fn update(&self, op: TaskUpdateOp, now: Time) -> muster_sched::TaskUpdateOutcome {
        self.sched.task_update(op, now).await.expect("task_update")
    }
}

/// 2044-02-03T04:05:06Z plus `secs`.
pub fn t(secs: i64) -> Time {
    chrono::Utc.with_ymd_and_hms(2044, 2, 3, 4, 5, 6).single().expect("valid date") + chrono::Duration::seconds(secs)
}

pub fn caller() -> Caller {
    Caller { identity: "user:tester@example.com".to_string(), high_priority_allowed: true }
}

pub fn hello(bot: &str, pool: &str, extra: &[(&str, &[&str])]) -> BotHello {
    let mut pairs: Vec<(&str, Vec<&str>)> = vec![("id", vec![bot]), ("pool", vec![pool])];
    for (k, vs) in extra {
        pairs.push((k, vs.to_vec()));
    }
    BotHello {
        bot_id: bot.to_string(),
        dimensions: BotDimensions::from_map(pairs),
        state_json: "{}".to_string(),
        version: "v1".to_string(),
        ..Default::default()
    }
}

pub fn slice(pool: &str, extra: &[(&str, &str)], expiration_secs: i32) -> TaskSlice {
    let mut dims = vec![("pool".to_string(), pool.to_string())];
    dims.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    TaskSlice {
        properties: TaskProperties {
            command: vec!["echo".to_string(), "hi".to_string()],
            dimensions: TaskDimensions(dims),
            execution_timeout_secs: 3600,
            ..Default::default()
        },
        expiration_secs,
        wait_for_capacity: false,
    }
}

pub fn task(name: &str, pool: &str, priority: i32) -> NewTaskRequest {
    NewTaskRequest { name: name.to_string(), priority, task_slices: vec![slice(pool, &[], 600)], ..Default::default() }
}

/// The task id of a `Run` outcome.
pub fn run_id(out: &PollOutcome) -> Option<TaskId> {
    match out {
        PollOutcome::Run { result, .. } => Some(result.id),
        _ => None,
    }
}

pub fn is_sleep(out: &PollOutcome) -> bool {
    matches!(out, PollOutcome::Sleep { .. })
}

/// A final packet with an exit code.
pub fn done(bot: &str, task: TaskId, exit: i64) -> TaskUpdateOp {
    TaskUpdateOp {
        bot_id: bot.to_string(),
        task_id: task,
        exit_code: Some(exit),
        duration: Some(1.5),
        output: Some((0, b"hello\n".to_vec())),
        ..Default::default()
    }
}

/// A keep-alive packet.
pub fn ping(bot: &str, task: TaskId) -> TaskUpdateOp {
    TaskUpdateOp { bot_id: bot.to_string(), task_id: task, ..Default::default() }
}

pub fn assert_state(r: &TaskResult, s: TaskState) {
    assert_eq!(r.state, s, "task {} is {:?}, want {:?}", r.id, r.state, s);
}

pub type TestResult = Result<()>;
