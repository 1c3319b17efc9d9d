//! `noop`: waits `sleep` (default 0), emits `triggers_count` triggers
//! (`noop:<inv>:<i>`) and succeeds. Useful to test schedules and to chain
//! jobs.

use super::{duration_param, Controller, ManagerError, TaskManager, Traits};
use crate::model::{Payload, Status, Trigger};
use async_trait::async_trait;
use chrono::Duration;

pub struct Noop;

const KEYS: &[&str] = &["sleep", "triggers_count"];

fn params(p: &serde_json::Value) -> Result<(Duration, u64), String> {
    if let Some(obj) = p.as_object() {
        if let Some(k) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!("noop: unknown parameter {k:?} (known: {})", KEYS.join(", ")));
        }
    } else if !p.is_null() {
        return Err("noop: parameters must be a table".into());
    }
    let sleep = duration_param(p, "sleep", Duration::zero()).map_err(|e| format!("noop: {e}"))?;
    if sleep < Duration::zero() {
        return Err("noop: sleep must not be negative".into());
    }
    let count = match p.get("triggers_count") {
        None => 0,
        Some(v) => v.as_u64().filter(|n| *n <= 100).ok_or("noop: triggers_count must be a number 0-100")?,
    };
    Ok((sleep, count))
}

fn finish(ctl: &mut Controller<'_>, count: u64) {
    let now = ctl.now();
    for i in 0..count {
        let id = format!("noop:{}:{i}", ctl.invocation_id());
        ctl.emit_trigger(Trigger {
            id,
            created: now,
            order_in_batch: i as i64,
            title: String::new(),
            url: String::new(),
            emitted_by_user: None,
            emitter_job: None,
            emitter_inv: None,
            payload: Payload::Noop { data: String::new() },
        });
    }
    ctl.set_status(Status::Succeeded);
}

#[async_trait]
impl TaskManager for Noop {
    fn name(&self) -> &'static str {
        "noop"
    }
    fn traits(&self) -> Traits {
        Traits { multistage: true }
    }
    fn validate(&self, p: &serde_json::Value, _realm: &str) -> Result<(), String> {
        params(p).map(|_| ())
    }
    async fn launch(&self, ctl: &mut Controller<'_>) -> Result<(), ManagerError> {
        let (sleep, count) = params(&ctl.task().params.clone()).map_err(ManagerError::Fatal)?;
        if sleep.is_zero() {
            finish(ctl, count);
        } else {
            ctl.log(&format!("sleeping {}", crate::schedule::format_duration(sleep)));
            ctl.set_status(Status::Running);
            ctl.add_timer(sleep, "done", b"");
        }
        Ok(())
    }
    async fn abort(&self, _ctl: &mut Controller<'_>) -> Result<(), ManagerError> {
        Ok(())
    }
    async fn handle_timer(&self, ctl: &mut Controller<'_>, _title: &str, _payload: &[u8]) -> Result<(), ManagerError> {
        let (_, count) = params(&ctl.task().params.clone()).map_err(ManagerError::Fatal)?;
        finish(ctl, count);
        Ok(())
    }
}
