//! swarming.v2.Tasks (docs/client-api.md#tasks-service), one file per RPC.

pub(crate) mod batch_get_result;
pub(crate) mod cancel_task;
pub(crate) mod cancel_tasks;
pub(crate) mod count_tasks;
pub(crate) mod get_request;
pub(crate) mod get_result;
pub(crate) mod get_stdout;
pub(crate) mod list_task_requests;
pub(crate) mod list_task_states;
pub(crate) mod list_tasks;
pub(crate) mod new_task;

use muster_core::{TaskResult, TaskState};

/// Performance stats are shown only for tasks that ran and did not crash,
/// or dedups (docs/client-api.md#tasks-service, GetResult).
pub(crate) fn perf_allowed(r: &TaskResult, asked: bool) -> bool {
    asked
        && (r.is_deduped()
            || matches!(
                r.state,
                TaskState::Completed | TaskState::TimedOut | TaskState::Killed | TaskState::ClientError
            ))
}
