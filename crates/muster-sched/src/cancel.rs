//! CancelTask, CancelTasks and TerminateBot (docs/client-api.md#bots-service, #tasks-service).
//! PENDING → CANCELED at once; RUNNING + kill_running → `killing` (the bot
//! learns it as `must_stop` on its next task_update). All CAS with re-read.

use crate::{CancelOutcome, CancelTasksOutcome, Result, Scheduler};
use muster_core::dims::DimFilter;
use muster_core::state::StateQuery;
use muster_core::task::{NewTaskRequest, TaskProperties, TaskSlice};
use muster_core::validate::{build_request, CreateContext};
use muster_core::{Error, TaskDimensions, TaskId, TaskState, Time};
use muster_store::{CommitOutcome, TaskQuery, Txn, Write};

/// TerminateBot task expiration: 5 days.
const TERMINATE_EXPIRATION_SECS: i32 = 432_000;

impl Scheduler {
    pub async fn cancel_task(&self, id: TaskId, kill_running: bool, now: Time) -> Result<CancelOutcome> {
        for _ in 0..16 {
            let Some(current) = self.store.get_result(id).await? else {
                return Err(Error::not_found("no such task"));
            };
            match current.state {
                TaskState::Pending => {
                    // Take it out of the index first so no bot claims it
                    // while the cancel commits.
                    let removed = self.state.lock().index.remove(id);
                    let mut next = current.clone();
                    next.state = TaskState::Canceled;
                    next.abandoned = Some(now);
                    next.completed = Some(now);
                    self.stamp(&mut next, now);
                    match self.store.commit(Txn::new().with(Write::UpdateResult(Box::new(next)))).await {
                        Ok(CommitOutcome::Committed) => {
                            return Ok(CancelOutcome { canceled: true, was_running: false })
                        }
                        Ok(CommitOutcome::Conflict { .. }) => {
                            if let Some(e) = removed {
                                self.restore_if_pending(e).await?;
                            }
                            continue;
                        }
                        Err(err) => {
                            if let Some(e) = removed {
                                self.dispatch(e);
                            }
                            return Err(err.into());
                        }
                    }
                }
                TaskState::Running => {
                    if !kill_running || current.killing {
                        return Ok(CancelOutcome { canceled: false, was_running: true });
                    }
                    let mut next = current.clone();
                    next.killing = true;
                    next.abandoned = Some(now);
                    self.stamp(&mut next, now);
                    match self.store.commit(Txn::new().with(Write::UpdateResult(Box::new(next)))).await? {
                        CommitOutcome::Committed => {
                            if let Some(r) = self.state.lock().running.get_mut(&id) {
                                r.killing = true;
                            }
                            return Ok(CancelOutcome { canceled: true, was_running: true });
                        }
                        CommitOutcome::Conflict { .. } => continue,
                    }
                }
                _ => return Ok(CancelOutcome { canceled: false, was_running: false }),
            }
        }
        Err(Error::internal(format!("task {id}: too many concurrent updates")))
    }

    /// Puts back an entry removed for a cancel that lost its CAS, if the
    /// task is still pending on that slice.
    async fn restore_if_pending(&self, e: crate::index::PendingEntry) -> Result<()> {
        if let Some(r) = self.store.get_result(e.id()).await? {
            if r.state == TaskState::Pending && r.current_slice == e.slice as i32 {
                self.dispatch(e);
            } else if r.state == TaskState::Pending {
                let slice = r.current_slice.max(0) as usize;
                if slice < e.request.slices.len() {
                    self.dispatch(crate::index::PendingEntry { request: e.request, slice });
                }
            }
        }
        Ok(())
    }

    /// Cancels the tasks matching `q` (tags required by the caller).
    pub async fn cancel_tasks(&self, q: TaskQuery, kill_running: bool, now: Time) -> Result<CancelTasksOutcome> {
        let mut q = q;
        q.state = if kill_running { StateQuery::PendingRunning } else { StateQuery::Pending };
        if q.limit == 0 {
            q.limit = 100;
        }
        let page = self.store.list_results(&q).await?;
        for r in &page.items {
            self.cancel_task(r.id, kill_running, now).await?;
        }
        Ok(CancelTasksOutcome { matched: page.items.len(), cursor: page.cursor })
    }

    /// Creates (or returns the pending) termination task for a bot.
    pub async fn terminate_bot(&self, bot_id: &str, reason: &str, now: Time) -> Result<TaskId> {
        if bot_id.is_empty() {
            return Err(Error::invalid("bot_id is required"));
        }
        let q = TaskQuery {
            state: StateQuery::Pending,
            tags: vec![DimFilter::new("id", bot_id), DimFilter::new("swarming.terminate", "1")],
            limit: 1,
            ..Default::default()
        };
        if let Some(existing) = self.store.list_results(&q).await?.items.first() {
            return Ok(existing.id);
        }
        let name =
            if reason.is_empty() { format!("Terminate {bot_id}") } else { format!("Terminate {bot_id}: {reason}") };
        let req = NewTaskRequest {
            name,
            priority: 0,
            task_slices: vec![TaskSlice {
                properties: TaskProperties {
                    dimensions: TaskDimensions(vec![("id".to_string(), bot_id.to_string())]),
                    ..Default::default()
                },
                expiration_secs: TERMINATE_EXPIRATION_SECS,
                wait_for_capacity: true,
            }],
            tags: vec!["swarming.terminate:1".to_string()],
            ..Default::default()
        };
        let ctx = CreateContext {
            now,
            random16: rand::random::<u16>(),
            authenticated: "service:muster".to_string(),
            high_priority_allowed: true,
        };
        let mut request = build_request(&req, &ctx);
        request.tags.retain(|t| t != "swarming.pool.task_template:none");
        request.tags.push("swarming.pool.template:no_pool".to_string());
        request.tags.sort();
        request.tags.dedup();
        let out = self.create_task(request, None).await?;
        Ok(out.request.id)
    }
}
