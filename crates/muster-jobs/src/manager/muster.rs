//! `muster`: runs an invocation as a task on this server's own fleet.
//!
//! The task is created in-process (no HTTP) with `request_uuid =
//! job:<job>/inv:<invocation>` and the caller `project:<project>`, so a
//! repeated launch (after a crash before the launch was recorded) gets the
//! same task back. The task's result is read from the store by a short
//! status timer (`poll_interval`, default 1 s): PENDING and RUNNING keep the
//! invocation RUNNING; COMPLETED without failure → SUCCEEDED; CANCELED and
//! KILLED → ABORTED; anything else → FAILED. Aborting the invocation cancels
//! the task (killing it if it runs).
//!
//! Parameters: `command` (required), `pool`, `dimensions` (table), `env`
//! (table), `name`, `priority` (200), `tags` (["k:v"]), `execution_timeout`
//! (1h), `io_timeout` (0 = none), `grace_period` (30s), `expiration` (30m),
//! `service_account`, `realm`, `poll_interval` (1s). The invocation's
//! properties reach the task as JSON in `MUSTER_JOB_PROPERTIES`.

use super::{duration_param, Controller, ManagerError, TaskManager, Traits};
use crate::model::Status;
use async_trait::async_trait;
use chrono::Duration;
use muster_core::dims::TaskDimensions;
use muster_core::task::{NewTaskRequest, TaskProperties, TaskSlice};
use muster_core::{TaskId, TaskState};
use muster_sched::{Caller, Scheduler};
use std::sync::Arc;

pub struct Muster {
    /// None: validation only (`muster jobs check`).
    sched: Option<Arc<Scheduler>>,
}

impl Muster {
    pub fn new(sched: Arc<Scheduler>) -> Muster {
        Muster { sched: Some(sched) }
    }
    /// Checks parameters only; launching fails.
    pub fn offline() -> Muster {
        Muster { sched: None }
    }
    fn sched(&self) -> Result<&Arc<Scheduler>, ManagerError> {
        self.sched.as_ref().ok_or_else(|| ManagerError::Fatal("no scheduler (validation only)".into()))
    }
}

const KEYS: &[&str] = &[
    "command",
    "pool",
    "dimensions",
    "env",
    "name",
    "priority",
    "tags",
    "execution_timeout",
    "io_timeout",
    "grace_period",
    "expiration",
    "service_account",
    "realm",
    "poll_interval",
];

struct Params {
    req: NewTaskRequest,
    poll: Duration,
}

fn strings(v: &serde_json::Value, key: &str) -> Result<Vec<String>, String> {
    match v.get(key) {
        None => Ok(vec![]),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or_else(|| format!("muster: `{key}` must be a list of strings")))
            .collect(),
        Some(_) => Err(format!("muster: `{key}` must be a list of strings")),
    }
}

fn pairs(v: &serde_json::Value, key: &str) -> Result<Vec<(String, String)>, String> {
    match v.get(key) {
        None => Ok(vec![]),
        Some(serde_json::Value::Object(o)) => o
            .iter()
            .map(|(k, x)| {
                x.as_str()
                    .map(|s| (k.clone(), s.to_string()))
                    .ok_or_else(|| format!("muster: `{key}.{k}` must be a string"))
            })
            .collect(),
        Some(_) => Err(format!("muster: `{key}` must be a table of strings")),
    }
}

fn secs(p: &serde_json::Value, key: &str, default: i64) -> Result<i32, String> {
    let d = duration_param(p, key, Duration::seconds(default)).map_err(|e| format!("muster: {e}"))?;
    i32::try_from(d.num_seconds()).map_err(|_| format!("muster: `{key}` is too long"))
}

fn params(p: &serde_json::Value) -> Result<Params, String> {
    let obj = p.as_object().ok_or("muster: parameters must be a table with at least `command`")?;
    if let Some(k) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!("muster: unknown parameter {k:?} (known: {})", KEYS.join(", ")));
    }
    let command = strings(p, "command")?;
    if command.is_empty() {
        return Err("muster: `command` is required (a list of strings)".into());
    }
    let mut dims = pairs(p, "dimensions")?;
    if let Some(pool) = obj.get("pool") {
        let pool = pool.as_str().ok_or("muster: `pool` must be a string")?;
        dims.retain(|(k, _)| k != "pool");
        dims.push(("pool".into(), pool.to_string()));
    }
    let priority = match obj.get("priority") {
        None => 200,
        Some(v) => v.as_i64().and_then(|n| i32::try_from(n).ok()).ok_or("muster: `priority` must be a number")?,
    };
    let str_of = |k: &str| -> Result<String, String> {
        match obj.get(k) {
            None => Ok(String::new()),
            Some(v) => v.as_str().map(str::to_string).ok_or_else(|| format!("muster: `{k}` must be a string")),
        }
    };
    let poll = duration_param(p, "poll_interval", Duration::seconds(1)).map_err(|e| format!("muster: {e}"))?;
    if poll < Duration::milliseconds(100) {
        return Err("muster: poll_interval must be at least 100ms".into());
    }
    let props = TaskProperties {
        command,
        dimensions: TaskDimensions::new(dims),
        env: pairs(p, "env")?,
        execution_timeout_secs: secs(p, "execution_timeout", 3600)?,
        grace_period_secs: secs(p, "grace_period", 30)?,
        io_timeout_secs: secs(p, "io_timeout", 0)?,
        ..Default::default()
    };
    let req = NewTaskRequest {
        name: str_of("name")?,
        priority,
        task_slices: vec![TaskSlice {
            properties: props,
            expiration_secs: secs(p, "expiration", 1800)?,
            wait_for_capacity: false,
        }],
        tags: strings(p, "tags")?,
        service_account: str_of("service_account")?,
        realm: str_of("realm")?,
        ..Default::default()
    };
    Ok(Params { req, poll })
}

/// The invocation's outcome from the task's state, if it is final.
fn outcome(r: &muster_core::TaskResult) -> Option<(Status, String)> {
    let id = r.id.summary_id();
    match r.state {
        TaskState::Pending | TaskState::Running | TaskState::Invalid => None,
        TaskState::Completed if !r.failure && !r.internal_failure => {
            Some((Status::Succeeded, format!("task {id} completed")))
        }
        TaskState::Completed => {
            let code = r.exit_code.map(|c| format!(" with exit code {c}")).unwrap_or_default();
            Some((Status::Failed, format!("task {id} failed{code}")))
        }
        TaskState::Canceled | TaskState::Killed => {
            Some((Status::Aborted, format!("task {id} ended {}", r.state.name())))
        }
        other => Some((Status::Failed, format!("task {id} ended {}", other.name()))),
    }
}

fn task_id(ctl: &Controller<'_>) -> Option<TaskId> {
    ctl.task_data().get("task_id").and_then(|v| v.as_str()).and_then(|s| TaskId::parse(s).ok())
}

#[async_trait]
impl TaskManager for Muster {
    fn name(&self) -> &'static str {
        "muster"
    }
    fn traits(&self) -> Traits {
        Traits { multistage: true }
    }
    fn validate(&self, p: &serde_json::Value, _realm: &str) -> Result<(), String> {
        let mut p = params(p)?;
        p.req.request_uuid = "validation".into();
        if p.req.name.is_empty() {
            p.req.name = "validation".into();
        }
        muster_core::validate::validate_new_task(&p.req).map_err(|e| format!("muster: {}", e.message))
    }
    async fn launch(&self, ctl: &mut Controller<'_>) -> Result<(), ManagerError> {
        let Params { mut req, poll } = params(&ctl.task().params.clone()).map_err(ManagerError::Fatal)?;
        if req.name.is_empty() {
            req.name = format!("scheduler:{}/{}", ctl.job_id(), ctl.invocation_id());
        }
        req.request_uuid = ctl.idempotency_key();
        req.tags.extend([
            format!("scheduler_job_id:{}", ctl.job_id()),
            format!("scheduler_invocation_id:{}", ctl.invocation_id()),
            "user_agent:muster-jobs".to_string(),
        ]);
        req.tags.extend(ctl.tags().iter().cloned());
        if !ctl.properties().is_null() {
            let props = ctl.properties().to_string();
            for s in &mut req.task_slices {
                s.properties.env.push(("MUSTER_JOB_PROPERTIES".into(), props.clone()));
            }
        }
        let caller = Caller { identity: format!("project:{}", ctl.project()), high_priority_allowed: false };
        let out = match self.sched()?.new_task(req, &caller, ctl.now()).await {
            Ok(o) => o,
            Err(e) if matches!(e.kind, muster_core::ErrorKind::Internal | muster_core::ErrorKind::Unavailable) => {
                return Err(ManagerError::Transient(e.message))
            }
            Err(e) => return Err(ManagerError::Fatal(format!("the task was refused: {}", e.message))),
        };
        let Some(result) = out.result else { return Err(ManagerError::Fatal("no task was created".into())) };
        let id = result.id.summary_id();
        ctl.log(&format!("Task {id} created"));
        ctl.set_task_data(serde_json::json!({ "task_id": id }));
        ctl.set_view_url(&format!("/task?id={id}"));
        match outcome(&result) {
            Some((status, why)) => {
                ctl.set_summary(&why);
                ctl.set_status(status);
            }
            None => {
                ctl.set_status(Status::Running);
                ctl.add_timer(poll, "poll", b"");
            }
        }
        Ok(())
    }
    async fn abort(&self, ctl: &mut Controller<'_>) -> Result<(), ManagerError> {
        let Some(id) = task_id(ctl) else { return Ok(()) };
        self.sched()?.cancel_task(id, true, ctl.now()).await.map_err(|e| ManagerError::Transient(e.message))?;
        ctl.log(&format!("Task {} cancelled", id.summary_id()));
        Ok(())
    }
    async fn handle_timer(&self, ctl: &mut Controller<'_>, _title: &str, _payload: &[u8]) -> Result<(), ManagerError> {
        let Some(id) = task_id(ctl) else { return Err(ManagerError::Fatal("no task id recorded".into())) };
        let poll = params(&ctl.task().params.clone()).map(|p| p.poll).unwrap_or(Duration::seconds(1));
        let result = self.sched()?.store().get_result(id).await.map_err(|e| ManagerError::Transient(e.to_string()))?;
        let Some(result) = result else {
            return Err(ManagerError::Fatal(format!("task {} is gone", id.summary_id())));
        };
        match outcome(&result) {
            Some((status, why)) => {
                ctl.log(&why);
                ctl.set_summary(&why);
                ctl.set_status(status);
            }
            None => ctl.add_timer(poll, "poll", b""),
        }
        Ok(())
    }
    async fn debug_state(&self, inv: &crate::model::Invocation) -> Result<serde_json::Value, ManagerError> {
        Ok(inv.data.task_data.clone())
    }
}
