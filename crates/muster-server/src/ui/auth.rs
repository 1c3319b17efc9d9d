//! Who may do what in the UI. The request was authenticated by
//! `crate::access::middleware`; this module turns the UI's coarse
//! permissions into the same checks the pRPC API makes:
//!
//! - [`check`] with `Read`/`NewTask`: the page needs a caller who can see
//!   something (server-level `servers.peek`, or listing rights in some pool);
//! - actions check their target (a task's cancel permission, a bot's pools,
//!   NewTask's full rules) in `actions.rs`;
//! - pages show a button only when [`allows_task`] / [`allows_bot`] /
//!   [`allows_new_task`] say the server would accept it (it refuses anyway).

use super::UiError;
use crate::access::RequestAccess;
use axum::http::{HeaderMap, StatusCode};
use muster_access::perms;
use std::sync::Arc;

/// What a UI request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Perm {
    /// Read any page (tasks, bots, output).
    Read,
    /// Create tasks (new task form, retry).
    NewTask,
    /// Cancel a pending task or kill a running one.
    CancelTask,
    /// Ask a bot to shut down.
    TerminateBot,
    /// Forget a bot.
    DeleteBot,
}

/// The caller of a UI request.
#[derive(Clone)]
pub(crate) struct UiCaller {
    pub identity: String,
    pub ctx: Arc<RequestAccess>,
}

/// The caller of the current request.
pub(crate) fn caller(_headers: &HeaderMap) -> UiCaller {
    let ctx = crate::access::current();
    UiCaller { identity: ctx.caller.identity.to_string(), ctx }
}

fn can_see_anything(c: &UiCaller) -> bool {
    let ck = c.ctx.checker();
    ck.server_perm(perms::SERVERS_PEEK)
        || !ck.pools_with(perms::POOLS_LIST_TASKS).is_empty()
        || !ck.pools_with(perms::POOLS_LIST_BOTS).is_empty()
}

/// Whether `caller` holds `perm` somewhere (the target is checked by the action).
pub(crate) fn allows(caller: &UiCaller, perm: Perm) -> bool {
    match perm {
        Perm::Read | Perm::NewTask => can_see_anything(caller),
        Perm::CancelTask | Perm::TerminateBot | Perm::DeleteBot => true,
    }
}

/// Whether the caller may cancel this task (from its tags).
pub(crate) fn allows_task(caller: &UiCaller, id: &str, tags: &[String]) -> bool {
    caller.ctx.checker().task_perm(&crate::access::task_acl(id, tags), perms::TASKS_CANCEL)
}

/// Whether the caller may do `perm` on a bot in `pools`.
pub(crate) fn allows_bot(caller: &UiCaller, pools: &[String], perm: Perm) -> bool {
    let p = match perm {
        Perm::TerminateBot => perms::POOLS_TERMINATE_BOT,
        Perm::DeleteBot => perms::POOLS_DELETE_BOT,
        _ => perms::POOLS_LIST_BOTS,
    };
    let pools = if pools.is_empty() { vec!["unassigned".to_string()] } else { pools.to_vec() };
    caller.ctx.checker().bot_perm(&pools, p)
}

/// Whether the caller may submit tasks to `pool`.
pub(crate) fn allows_new_task(caller: &UiCaller, pool: Option<&str>) -> bool {
    pool.is_some_and(|p| caller.ctx.checker().pool_perm(p, perms::POOLS_CREATE_TASK))
}

/// The one call a handler makes before acting: the caller, or 403.
pub(crate) fn check(headers: &HeaderMap, perm: Perm) -> Result<UiCaller, UiError> {
    let c = caller(headers);
    if allows(&c, perm) {
        Ok(c)
    } else {
        tracing::info!(caller = %c.identity, permission = ?perm, "ui permission denied");
        Err(UiError {
            status: StatusCode::FORBIDDEN,
            message: format!("the caller \"{}\" doesn't have permission to view this server; sign in", c.identity),
        })
    }
}
