//! The web UI: server-rendered HTML pages built from the state
//! the scheduler and the store already serve to the pRPC API, plus a small
//! script (`web/ui.js`) that only enhances them (live output, dimension
//! autocomplete, confirmations, column sorting). CSS and JS are embedded in
//! the binary at build time (`include_str!` of `web/`), so `muster server`
//! needs no files on disk.
//!
//! Pages (deep links match Swarming's): `/` dashboard, `/botlist`, `/bot?id=`,
//! `/tasklist`, `/task?id=`, `/task/raw?id=[&offset=]`, `/newtask`; the
//! task log viewer reads `/task/log` and `/task/log/search` (see [`log`]).
//! Actions are HTML forms POSTing to `/ui/...` (see [`actions`]); each calls
//! the same scheduler op as the matching pRPC handler, then redirects (303).
//!
//! Every handler is bounded: listings are paginated (≤ 100 rows per page),
//! counts are single store/scheduler calls, nothing loads the whole fleet or
//! task table into a page.
//!
//! Permissions: every request is authenticated by `crate::access`; every
//! handler starts with one [`auth::check`] call naming the [`auth::Perm`] it
//! needs, actions then check their target with the pRPC API's rules, and
//! pages show a button only when the action would be allowed. Every form
//! POST is CSRF-protected ([`csrf`]).

mod actions;
mod ansi;
pub(crate) mod auth;
mod chart;
pub(crate) mod csrf;
mod dashboard;
mod drains;
mod fleet;
mod log;
mod newtask;
pub(crate) mod page;
pub(crate) mod signin;
mod tasks;
mod why;

use crate::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

pub(crate) fn routes() -> Router<State> {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/botlist", get(fleet::list_page))
        .route("/botlist/suggest", get(fleet::suggest))
        .route("/bot", get(fleet::bot_page))
        .route("/tasklist", get(tasks::list_page))
        .route("/task", get(tasks::task_page))
        .route("/task/raw", get(tasks::raw_output))
        .route("/task/log", get(log::slice))
        .route("/task/log/search", get(log::search))
        .route("/newtask", get(newtask::page))
        .route("/ui/static/ui.css", get(page::css))
        .route("/ui/static/ui.js", get(page::js))
        .route("/ui/task/cancel", post(actions::cancel_task))
        .route("/ui/task/kill", post(actions::kill_task))
        .route("/ui/task/retry", post(actions::retry_task))
        .route("/ui/task/new", post(actions::new_task))
        .route("/ui/bot/terminate", post(actions::terminate_bot))
        .route("/ui/bot/delete", post(actions::delete_bot))
        .route("/ui/drain", post(drains::drain))
        .route("/ui/undrain", post(drains::undrain))
        .merge(signin::routes())
}

/// A UI failure, shown as an HTML error page.
#[derive(Debug)]
pub(crate) struct UiError {
    status: StatusCode,
    message: String,
}

impl UiError {
    pub(crate) fn bad(message: impl Into<String>) -> UiError {
        UiError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }
    pub(crate) fn is_bad_request(&self) -> bool {
        self.status == StatusCode::BAD_REQUEST
    }
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
    pub(crate) fn not_found(message: impl Into<String>) -> UiError {
        UiError { status: StatusCode::NOT_FOUND, message: message.into() }
    }
}

impl From<muster_core::Error> for UiError {
    fn from(e: muster_core::Error) -> UiError {
        use muster_core::ErrorKind as K;
        let status = match e.kind {
            K::InvalidArgument => StatusCode::BAD_REQUEST,
            K::NotFound => StatusCode::NOT_FOUND,
            K::PermissionDenied => StatusCode::FORBIDDEN,
            K::Unauthenticated => StatusCode::UNAUTHORIZED,
            K::FailedPrecondition | K::AlreadyExists => StatusCode::CONFLICT,
            K::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            K::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            K::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e.message, "ui request failed");
            return UiError { status, message: "internal error".to_string() };
        }
        UiError { status, message: e.message }
    }
}

impl From<muster_store::StoreError> for UiError {
    fn from(e: muster_store::StoreError) -> UiError {
        UiError::from(muster_core::Error::from(e))
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        page::error_page(self.status, &self.message)
    }
}

pub(crate) type UiResult<T = Response> = Result<T, UiError>;

/// Page size from a query value: default 50, clamped to 1..=100.
pub(crate) fn page_limit(v: Option<usize>) -> usize {
    v.unwrap_or(50).clamp(1, 100)
}

/// Parses a filter box (`os:Linux pool:ci|ci2`) into dimension/tag filters.
pub(crate) fn parse_filters(s: &str) -> UiResult<Vec<muster_core::DimFilter>> {
    s.split_whitespace()
        .map(|t| match muster_core::DimFilter::parse_tag(t) {
            Some(f) if !f.key.is_empty() && f.values.iter().all(|v| !v.is_empty()) => Ok(f),
            _ => Err(UiError::bad(format!("bad filter {t:?}: expected key:value"))),
        })
        .collect()
}
