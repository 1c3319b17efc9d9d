//! Who may do what in the UI: the one permission check every handler makes.
//!
//! muster has no client authentication yet: every caller is
//! `anonymous:anonymous` and every permission is granted (the pRPC API does
//! the same, see `client_api::common::caller`). When authentication lands,
//! [`caller`] resolves the identity from the request and [`allows`] consults
//! the realm/ACL config; pages and handlers need no change: handlers call
//! [`check`] once, pages hide the buttons [`allows`] refuses.

use super::UiError;
use axum::http::{HeaderMap, StatusCode};

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
#[derive(Debug, Clone)]
pub(crate) struct UiCaller {
    pub identity: String,
}

impl UiCaller {
    /// The scheduler's view of this caller (for NewTask).
    pub(crate) fn sched(&self) -> muster_sched::Caller {
        muster_sched::Caller { identity: self.identity.clone(), high_priority_allowed: true }
    }
}

/// Resolves the caller of a request (no authentication yet: anonymous).
pub(crate) fn caller(_headers: &HeaderMap) -> UiCaller {
    UiCaller { identity: "anonymous:anonymous".to_string() }
}

/// Whether `caller` holds `perm` (everything, until auth exists).
pub(crate) fn allows(_caller: &UiCaller, _perm: Perm) -> bool {
    true
}

/// The one call a handler makes before acting: the caller, or 403.
pub(crate) fn check(headers: &HeaderMap, perm: Perm) -> Result<UiCaller, UiError> {
    let c = caller(headers);
    if allows(&c, perm) {
        Ok(c)
    } else {
        Err(UiError { status: StatusCode::FORBIDDEN, message: format!("{} may not {perm:?}", c.identity) })
    }
}
