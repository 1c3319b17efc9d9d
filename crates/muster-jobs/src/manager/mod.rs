//! Task managers: what actually runs an invocation.
//!
//! The engine calls a manager with a [`Controller`] that gives read access to
//! the invocation and collects its changes (status, manager data, view URL,
//! log lines, timers, emitted triggers). The engine commits them after the
//! call with a compare-and-set on the invocation, so:
//! - every call may be repeated (after a crash, a lost race or a transient
//!   error): `launch` must be idempotent on [`Controller::idempotency_key`];
//! - `launch` must move the invocation out of STARTING (to RUNNING for a
//!   multi-stage manager that then tracks it with timers or notifications,
//!   or straight to a final status);
//! - a manager never sees a finished invocation;
//! - [`ManagerError::Transient`] means "try again later" (nothing saved,
//!   launches back off), [`ManagerError::Fatal`] fails the invocation.
//!
//! Built-ins: [`noop`], [`http`] and, in muster-server, `muster` (a task on
//! this server's own fleet). Managers are registered by name in
//! [`Managers`]; a job names one with its task `kind`.

pub mod http;
pub mod muster;
pub mod noop;

use crate::model::{Invocation, Status, TaskSpec, Trigger};
use async_trait::async_trait;
use chrono::Duration;
use muster_core::Time;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagerError {
    /// Retry later (network trouble, the backend is busy).
    Transient(String),
    /// The invocation fails with this message.
    Fatal(String),
}

impl std::fmt::Display for ManagerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManagerError::Transient(m) => write!(f, "transient error: {m}"),
            ManagerError::Fatal(m) => write!(f, "{m}"),
        }
    }
}

/// How a manager behaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traits {
    /// STARTING → RUNNING → final; in RUNNING only the manager ends it.
    pub multistage: bool,
}

/// A message about an invocation from outside (a push, a callback).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notification {
    pub data: Vec<u8>,
    pub attributes: BTreeMap<String, String>,
}

/// A task manager. Implementations must be cheap to call concurrently for
/// different invocations.
#[async_trait]
pub trait TaskManager: Send + Sync + 'static {
    /// The `kind` jobs use to name it.
    fn name(&self) -> &'static str;
    fn traits(&self) -> Traits;
    /// Checks a job's parameters; the error says what is wrong.
    fn validate(&self, params: &serde_json::Value, realm: &str) -> Result<(), String>;
    /// Starts the work (idempotent on the invocation).
    async fn launch(&self, ctl: &mut Controller<'_>) -> Result<(), ManagerError>;
    /// Best effort; the engine marks the invocation ABORTED afterwards unless
    /// the manager set a final status itself.
    async fn abort(&self, ctl: &mut Controller<'_>) -> Result<(), ManagerError>;
    /// The authentication token carried by an UNVALIDATED notification.
    fn examine_notification(&self, _n: &Notification) -> Option<String> {
        None
    }
    async fn handle_notification(&self, _ctl: &mut Controller<'_>, _n: &Notification) -> Result<(), ManagerError> {
        Ok(())
    }
    async fn handle_timer(&self, ctl: &mut Controller<'_>, title: &str, payload: &[u8]) -> Result<(), ManagerError>;
    /// Anything worth showing about the manager's view of the invocation.
    async fn debug_state(&self, _inv: &Invocation) -> Result<serde_json::Value, ManagerError> {
        Ok(serde_json::Value::Null)
    }
}

/// The managers a server knows, by name.
#[derive(Clone, Default)]
pub struct Managers {
    by_name: BTreeMap<String, Arc<dyn TaskManager>>,
}

impl Managers {
    /// The built-ins that need nothing from the server: `noop` and `http`.
    pub fn builtin() -> Managers {
        let mut m = Managers::default();
        m.register(Arc::new(noop::Noop));
        m.register(Arc::new(http::Http::new()));
        m
    }
    pub fn register(&mut self, m: Arc<dyn TaskManager>) {
        self.by_name.insert(m.name().to_string(), m);
    }
    pub fn get(&self, name: &str) -> Option<&Arc<dyn TaskManager>> {
        self.by_name.get(name)
    }
    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }
    /// Validates a task spec with its manager.
    pub fn validate(&self, spec: &TaskSpec, realm: &str) -> Result<(), String> {
        match self.get(&spec.kind) {
            Some(m) => m.validate(&spec.params, realm),
            None => Err(format!("unknown task kind {:?} (known: {})", spec.kind, self.names().join(", "))),
        }
    }
}

/// A timer asked for during a call.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTimer {
    pub delay: Duration,
    pub title: String,
    pub payload: Vec<u8>,
}

/// An invocation's view and mutations during one manager call.
pub struct Controller<'a> {
    pub(crate) inv: Invocation,
    pub(crate) now: Time,
    pub(crate) timers: Vec<NewTimer>,
    pub(crate) emitted: Vec<Trigger>,
    pub(crate) http: &'a reqwest::Client,
}

impl<'a> Controller<'a> {
    pub(crate) fn new(inv: Invocation, now: Time, http: &'a reqwest::Client) -> Controller<'a> {
        Controller { inv, now, timers: Vec::new(), emitted: Vec::new(), http }
    }
    pub fn job_id(&self) -> &str {
        &self.inv.job_id
    }
    pub fn project(&self) -> &str {
        self.inv.job_id.split('/').next().unwrap_or("")
    }
    pub fn invocation_id(&self) -> i64 {
        self.inv.id
    }
    pub fn realm(&self) -> &str {
        &self.inv.data.realm
    }
    /// Stable across retries of the same invocation: external systems
    /// deduplicate launches with it.
    pub fn idempotency_key(&self) -> String {
        format!("job:{}/inv:{}", self.inv.job_id, self.inv.id)
    }
    pub fn task(&self) -> &TaskSpec {
        &self.inv.data.task
    }
    pub fn triggered_by(&self) -> Option<&str> {
        self.inv.data.triggered_by.as_deref()
    }
    /// The triggers this invocation consumed, oldest first.
    pub fn incoming_triggers(&self) -> &[Trigger] {
        &self.inv.data.incoming
    }
    pub fn properties(&self) -> &serde_json::Value {
        &self.inv.data.properties
    }
    pub fn tags(&self) -> &[String] {
        &self.inv.data.tags
    }
    pub fn now(&self) -> Time {
        self.now
    }
    pub fn http(&self) -> &reqwest::Client {
        self.http
    }
    pub fn status(&self) -> Status {
        self.inv.status
    }
    pub fn set_status(&mut self, s: Status) {
        self.inv.status = s;
    }
    pub fn task_data(&self) -> &serde_json::Value {
        &self.inv.data.task_data
    }
    pub fn set_task_data(&mut self, v: serde_json::Value) {
        self.inv.data.task_data = v;
    }
    pub fn set_view_url(&mut self, url: &str) {
        self.inv.data.view_url = url.to_string();
    }
    /// One-line reason shown with the job (e.g. "HTTP 500").
    pub fn set_summary(&mut self, s: &str) {
        self.inv.data.summary = s.to_string();
    }
    pub fn log(&mut self, msg: &str) {
        let now = self.now;
        self.inv.log(now, msg);
    }
    /// Asks for `handle_timer(title, payload)` after `delay` (made real when
    /// the call's changes commit; dropped if the invocation finishes).
    pub fn add_timer(&mut self, delay: Duration, title: &str, payload: &[u8]) {
        self.timers.push(NewTimer { delay, title: title.to_string(), payload: payload.to_vec() });
    }
    /// Emits a trigger; it goes to the jobs this one triggers when the
    /// invocation finishes.
    pub fn emit_trigger(&mut self, mut t: Trigger) {
        t.emitter_job = Some(self.inv.job_id.clone());
        t.emitter_inv = Some(self.inv.id);
        if t.order_in_batch == 0 {
            t.order_in_batch = self.emitted.len() as i64;
        }
        self.emitted.push(t);
    }
}

/// Parses an optional Go-style duration parameter.
pub fn duration_param(params: &serde_json::Value, key: &str, default: Duration) -> Result<Duration, String> {
    match params.get(key) {
        None | Some(serde_json::Value::Null) => Ok(default),
        Some(serde_json::Value::String(s)) => crate::schedule::parse_go_duration(s).map_err(|e| format!("{key}: {e}")),
        Some(serde_json::Value::Number(n)) => n
            .as_f64()
            .map(|f| Duration::milliseconds((f * 1000.0) as i64))
            .ok_or_else(|| format!("{key}: not a number")),
        Some(other) => Err(format!("{key}: expected a duration like \"30s\", got {other}")),
    }
}
