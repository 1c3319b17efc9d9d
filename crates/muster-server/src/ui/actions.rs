//! The UI's mutating endpoints: HTML forms POST here. Each handler is thin:
//! permission check → the same scheduler op the pRPC handler calls → 303 to
//! the page showing the outcome. All are idempotent: cancel/kill/terminate/
//! delete by their target id, new task and retry by a `request_uuid` the
//! form carries (generated when the form was rendered).

use super::auth::{self, Perm};
use super::{UiError, UiResult};
use crate::client_api::tasks::new_task::create_limited;
use crate::State;
use axum::extract::State as S;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use muster_core::task::NewTaskRequest;
use muster_core::{TaskDimensions, TaskId, TaskProperties, TaskSlice};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct IdForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    request_uuid: String,
}

fn task_id(s: &str) -> UiResult<TaskId> {
    if s.is_empty() {
        return Err(UiError::bad("missing task id"));
    }
    Ok(TaskId::parse(s)?)
}

fn to_task(id: TaskId) -> Response {
    Redirect::to(&format!("/task?id={}", id.summary_id())).into_response()
}

/// The task's cancel permission (NOT_FOUND first, like CancelTask).
async fn check_cancel(app: &State, headers: &HeaderMap, id: TaskId) -> UiResult<()> {
    let caller = auth::check(headers, Perm::CancelTask)?;
    let r = app.store.get_result(id).await?.ok_or_else(|| UiError::not_found("no such task"))?;
    let sid = id.summary_id();
    caller.ctx.checker().check_task(&crate::access::result_acl(app, &sid, &r), muster_access::perms::TASKS_CANCEL)?;
    Ok(())
}

pub(crate) async fn cancel_task(S(app): S<State>, headers: HeaderMap, Form(f): Form<IdForm>) -> UiResult {
    let id = task_id(&f.id)?;
    check_cancel(&app, &headers, id).await?;
    app.sched.cancel_task(id, false, app.clock.now()).await?;
    Ok(to_task(id))
}

pub(crate) async fn kill_task(S(app): S<State>, headers: HeaderMap, Form(f): Form<IdForm>) -> UiResult {
    let id = task_id(&f.id)?;
    check_cancel(&app, &headers, id).await?;
    app.sched.cancel_task(id, true, app.clock.now()).await?;
    Ok(to_task(id))
}

/// Tag keys the server adds itself; a retry must not send them again.
fn is_server_tag(tag: &str, dims: &[TaskDimensions]) -> bool {
    let (k, v) = tag.split_once(':').unwrap_or((tag, ""));
    matches!(
        k,
        "priority"
            | "realm"
            | "service_account"
            | "user"
            | "authenticated"
            | "parent_task_id"
            | "swarming.pool.task_template"
    ) || dims.iter().any(|d| d.0.iter().any(|(dk, dv)| dk == k && dv.split('|').any(|a| a == v)))
}

/// Retry = NewTask with the same request (a new task id).
pub(crate) async fn retry_task(
    S(app): S<State>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    Form(f): Form<IdForm>,
) -> UiResult {
    let caller = auth::check(&headers, Perm::NewTask)?;
    let id = task_id(&f.id)?;
    let req = app.store.get_request(id).await?.ok_or_else(|| UiError::not_found(format!("no task {}", f.id)))?;
    if req.is_termination() {
        return Err(UiError::bad("termination tasks cannot be retried"));
    }
    let dims: Vec<TaskDimensions> = req.slices.iter().map(|s| s.properties.dimensions.clone()).collect();
    let mut new = NewTaskRequest {
        name: req.name.clone(),
        priority: req.priority,
        task_slices: req.slices.clone(),
        tags: req.tags.iter().filter(|t| !is_server_tag(t, &dims)).cloned().collect(),
        user: req.user.clone(),
        service_account: if req.service_account == "none" { String::new() } else { req.service_account.clone() },
        realm: if req.realm == "none" { String::new() } else { req.realm.clone() },
        bot_ping_tolerance_secs: req.bot_ping_tolerance_secs,
        request_uuid: f.request_uuid.clone(),
        ..Default::default()
    };
    let sched_caller = crate::access::authorize_new_task(&caller.ctx, &mut new)?;
    let (key, size) = (crate::edge::caller_key(&ext), form_bytes(&headers));
    let out = create_limited(&app, new, &sched_caller, &key, size, app.clock.now()).await?;
    let new_id = out.result.map(|r| r.id).unwrap_or(out.request.id);
    Ok(to_task(new_id))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NewTaskForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub dimensions: String,
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub tags: String,
    #[serde(default)]
    pub priority: String,
    #[serde(default)]
    pub expiration_secs: String,
    #[serde(default)]
    pub execution_timeout_secs: String,
    #[serde(default)]
    pub io_timeout_secs: String,
    #[serde(default)]
    pub grace_period_secs: String,
    #[serde(default)]
    pub request_uuid: String,
}

/// A number field of the form; errors start with the field's name (the
/// form shows them next to it).
fn num(field: &str, v: &str, default: i32) -> UiResult<i32> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(default);
    }
    v.parse().map_err(|_| UiError::bad(format!("{field}: expected a whole number, got {v:?}")))
}

/// Splits a command line: whitespace separates, '…' and "…" quote.
pub(crate) fn split_command(s: &str) -> UiResult<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(UiError::bad("command: unterminated quote"));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// The request the new-task form describes.
pub(crate) fn form_request(f: &NewTaskForm) -> UiResult<NewTaskRequest> {
    let mut dims = Vec::new();
    // `key=value` as on the command line; `key:value` as in filters.
    for t in f.dimensions.split_whitespace() {
        let (k, v) = t
            .split_once('=')
            .or_else(|| t.split_once(':'))
            .ok_or_else(|| UiError::bad(format!("dimensions: {t:?} is not key=value")))?;
        dims.push((k.to_string(), v.to_string()));
    }
    let props = TaskProperties {
        command: split_command(&f.command)?,
        dimensions: TaskDimensions::new(dims),
        execution_timeout_secs: num("execution_timeout_secs", &f.execution_timeout_secs, 3600)?,
        io_timeout_secs: num("io_timeout_secs", &f.io_timeout_secs, 1200)?,
        grace_period_secs: num("grace_period_secs", &f.grace_period_secs, 30)?,
        ..Default::default()
    };
    Ok(NewTaskRequest {
        name: f.name.trim().to_string(),
        priority: num("priority", &f.priority, 100)?,
        task_slices: vec![TaskSlice {
            properties: props,
            expiration_secs: num("expiration_secs", &f.expiration_secs, 3600)?,
            wait_for_capacity: false,
        }],
        tags: f.tags.split_whitespace().map(str::to_string).collect(),
        request_uuid: f.request_uuid.clone(),
        ..Default::default()
    })
}

/// The size a form post counts for against the pending-bytes quota.
fn form_bytes(headers: &HeaderMap) -> u64 {
    let len = headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
    len.and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Creates the task, limited like pRPC NewTask (same caller key, rate and
/// quota), or (a request the server refuses) shows the form again with the
/// server's message next to the field it is about.
pub(crate) async fn new_task(
    S(app): S<State>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    Form(f): Form<NewTaskForm>,
) -> UiResult {
    let caller = auth::check(&headers, Perm::NewTask)?;
    let created = async {
        let mut new = form_request(&f)?;
        let sched_caller = crate::access::authorize_new_task(&caller.ctx, &mut new)?;
        let (key, size) = (crate::edge::caller_key(&ext), form_bytes(&headers));
        let out = create_limited(&app, new, &sched_caller, &key, size, app.clock.now()).await?;
        UiResult::Ok(out.result.map(|r| r.id).unwrap_or(out.request.id))
    }
    .await;
    match created {
        Ok(id) => Ok(to_task(id)),
        Err(e) if e.is_bad_request() => Ok(super::newtask::refused(&app, &f, e.message())),
        Err(e) => Err(e),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct BotForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    reason: String,
}

pub(crate) async fn terminate_bot(S(app): S<State>, headers: HeaderMap, Form(f): Form<BotForm>) -> UiResult {
    let caller = auth::check(&headers, Perm::TerminateBot)?;
    if f.id.is_empty() {
        return Err(UiError::bad("missing bot id"));
    }
    let reason = if f.reason.is_empty() { format!("terminated from the UI by {}", caller.identity) } else { f.reason };
    let reason = muster_core::validate::validate_terminate_reason(&reason)?;
    caller.ctx.checker().check_bot(
        &f.id,
        &crate::access::bot_pools(&app, &f.id),
        muster_access::perms::POOLS_TERMINATE_BOT,
    )?;
    let task = app.sched.terminate_bot(&f.id, &reason, app.clock.now()).await?;
    Ok(to_task(task))
}

pub(crate) async fn delete_bot(S(app): S<State>, headers: HeaderMap, Form(f): Form<BotForm>) -> UiResult {
    let caller = auth::check(&headers, Perm::DeleteBot)?;
    if f.id.is_empty() {
        return Err(UiError::bad("missing bot id"));
    }
    caller.ctx.checker().check_bot(
        &f.id,
        &crate::access::bot_pools(&app, &f.id),
        muster_access::perms::POOLS_DELETE_BOT,
    )?;
    // Already gone is an outcome: the bot page shows its history either way.
    app.sched.delete_bot(&f.id, app.clock.now()).await?;
    Ok(Redirect::to(&super::page::link("/bot", &[("id", &f.id)])).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_on_whitespace_and_respect_quotes() {
        let v = split_command("python3 -c 'print(\"a b\")'  x").expect("valid");
        assert_eq!(v, vec!["python3", "-c", "print(\"a b\")", "x"]);
        assert_eq!(split_command("echo ''").expect("valid"), vec!["echo", ""]);
        assert!(split_command("echo 'x").is_err());
    }

    #[test]
    fn the_form_becomes_a_one_slice_request_with_defaults() {
        let f = NewTaskForm {
            name: "n".into(),
            dimensions: "pool:ci os:Linux".into(),
            command: "echo hi".into(),
            priority: "50".into(),
            ..Default::default()
        };
        let r = form_request(&f).expect("valid");
        assert_eq!(r.priority, 50);
        assert_eq!(r.task_slices.len(), 1);
        assert_eq!(r.task_slices[0].properties.command, vec!["echo", "hi"]);
        assert_eq!(r.task_slices[0].properties.execution_timeout_secs, 3600);
        assert!(form_request(&NewTaskForm { priority: "x".into(), ..f }).is_err());
    }
}
