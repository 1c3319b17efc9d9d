//! [`ObservedStore`]: a [`Store`] that reports what its commits did.

use crate::metrics_text::pool_label;
use metrics::{counter, histogram};
use muster_core::{BotEvent, TaskId, TaskRequest, TaskResult, TaskState};
use muster_store::{CommitOutcome, Result, Store, Txn, Write};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Forget the state cache past this many active tasks (only the "from"
/// state of the next log lines suffers; see [`ObservedStore`]).
const MAX_TRACKED: usize = 2_000_000;

/// Bot events logged at INFO (the rest are routine: polls, task requests).
const LOGGED_BOT_EVENTS: &[&str] = &[
    "bot_connected",
    "bot_missing",
    "bot_shutdown",
    "bot_rebooting",
    "bot_terminate",
    "bot_deleted",
    "request_update",
    "bot_error",
];

/// Wraps a store: every committed Txn is observed after it is durable.
///
/// Keeps the last known state of each active (pending or running) task so
/// a change can be logged as `from → to` and counted once: seeded by
/// `load_active` (the scheduler's start), updated by this process's
/// commits. A task last changed by another replica shows `from=unknown`.
pub struct ObservedStore {
    inner: Arc<dyn Store>,
    states: Mutex<HashMap<TaskId, TaskState>>,
}

impl ObservedStore {
    pub fn new(inner: Arc<dyn Store>) -> ObservedStore {
        ObservedStore { inner, states: Mutex::new(HashMap::new()) }
    }

    fn observe(&self, notes: Vec<Note>) {
        for n in notes {
            match n {
                Note::Created(name, r) => self.created(&name, &r),
                Note::Updated(r) => self.updated(&r),
                Note::Event(e) => bot_event(&e),
            }
        }
    }

    fn created(&self, name: &str, r: &TaskResult) {
        let pool = pool_label(pool_of(r));
        counter!("muster_tasks_created_total", "pool" => pool.clone()).increment(1);
        tracing::info!(task_id = %r.id.summary_id(), name = %name, pool = %pool, state = r.state.name(), "task created");
        if r.state.is_final() {
            counter!("muster_tasks_finished_total", "pool" => pool, "state" => r.state.name()).increment(1);
        } else {
            self.track(r.id, r.state);
        }
    }

    fn updated(&self, r: &TaskResult) {
        let prior = self.states.lock().get(&r.id).copied();
        if prior == Some(r.state) {
            return;
        }
        // A task this process did not see before (another replica's):
        // RUNNING counts as a start only at its claim (started == modified).
        let started_here = r.state == TaskState::Running
            && (prior == Some(TaskState::Pending) || (prior.is_none() && r.started == Some(r.modified)));
        let pool = pool_label(pool_of(r));
        tracing::info!(
            task_id = %r.id.summary_id(),
            from = prior.map_or("unknown", |s| s.name()),
            to = r.state.name(),
            bot_id = %r.bot_id,
            "task state changed"
        );
        if started_here {
            if let Some(started) = r.started {
                let wait = (started - r.created).num_milliseconds().max(0) as f64 / 1000.0;
                histogram!("muster_task_queue_wait_seconds", "pool" => pool.clone()).record(wait);
            }
        }
        if r.state.is_final() {
            self.states.lock().remove(&r.id);
            counter!("muster_tasks_finished_total", "pool" => pool, "state" => r.state.name()).increment(1);
        } else {
            self.track(r.id, r.state);
        }
    }

    fn track(&self, id: TaskId, state: TaskState) {
        let mut states = self.states.lock();
        if states.len() >= MAX_TRACKED {
            states.clear();
        }
        states.insert(id, state);
    }
}

/// What a Txn will have done once committed (taken before the commit, so
/// the Txn itself, output bytes included, is never copied).
enum Note {
    Created(String, Box<TaskResult>),
    Updated(Box<TaskResult>),
    Event(Box<BotEvent>),
}

fn notes_of(txn: &Txn) -> Vec<Note> {
    let mut out = Vec::new();
    for w in &txn.writes {
        match w {
            Write::InsertTask { request, result } => out.push(Note::Created(request.name.clone(), result.clone())),
            Write::UpdateResult(r) => out.push(Note::Updated(r.clone())),
            Write::AppendEvent(e) if LOGGED_BOT_EVENTS.contains(&e.event_type.as_str()) => {
                out.push(Note::Event(e.clone()))
            }
            _ => {}
        }
    }
    out
}

/// The task's pool: its first `pool:` tag (requests carry their first
/// slice's dimensions as tags).
fn pool_of(r: &TaskResult) -> Option<&str> {
    r.tags.iter().find_map(|t| t.strip_prefix("pool:"))
}

fn bot_event(e: &BotEvent) {
    tracing::info!(bot_id = %e.bot_id, event = %e.event_type, message = %e.message, task_id = %e.task_id, "bot event");
}

muster_store::decorate_store!(ObservedStore, inner, {
    async fn commit(&self, txn: Txn) -> Result<CommitOutcome> {
        let started = std::time::Instant::now();
        let notes = notes_of(&txn);
        let out = self.inner.commit(txn).await;
        histogram!("muster_store_commit_seconds").record(started.elapsed().as_secs_f64());
        if let Ok(CommitOutcome::Committed) = &out {
            self.observe(notes);
        }
        out
    }
    async fn load_active(&self) -> Result<Vec<(TaskRequest, TaskResult)>> {
        let active = self.inner.load_active().await?;
        for (_, r) in &active {
            self.track(r.id, r.state);
        }
        Ok(active)
    }
});
