//! Job pages: `/jobs[/<project>]` (state, schedule, next run, last result,
//! recent runs), `/jobs/<project>/<job>` (actions, pending triggers,
//! invocations), `/jobs/<project>/<job>/<invocation>` (debug log, triggers,
//! timers, task link). Actions POST to `/ui/jobs/<action>` and redirect back.

use super::{caller, engine_of, require_job};
use crate::ui::page::{ago, esc, layout, opt_ts, ts};
use crate::ui::{UiError, UiResult};
use crate::State;
use axum::extract::{Form, Path, Query, State as S};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::Router;
use muster_core::Time;
use muster_jobs::access::JobPerm;
use muster_jobs::model::{Invocation, Job, Payload, Status, Trigger};
use serde::Deserialize;
use std::fmt::Write as _;

pub(crate) fn routes() -> Router<State> {
    Router::new()
        .route("/jobs", get(list_all))
        .route("/jobs/{project}", get(list_project))
        .route("/jobs/{project}/{job}", get(job_page))
        .route("/jobs/{project}/{job}/{inv}", get(invocation_page))
        .route("/ui/jobs/{action}", post(action))
}

fn status_badge(s: Status) -> String {
    let class = match s {
        Status::Succeeded => "st-completed",
        Status::Failed | Status::Overrun => "st-failure",
        Status::Aborted => "st-canceled",
        Status::Running => "st-running",
        Status::Starting | Status::Retrying => "st-pending",
    };
    format!("<span class=\"badge {class}\" data-status=\"{0}\">{0}</span>", s.as_str())
}

fn job_href(j: &Job) -> String {
    format!("/jobs/{}/{}", crate::ui::page::qv(&j.state.def.project), crate::ui::page::qv(&j.state.def.id))
}

/// Recent runs as a row of colored marks, oldest left.
fn sparkline(j: &Job) -> String {
    let mut s = String::from("<span class=\"sparkline\">");
    for r in j.state.recent.iter().rev() {
        let c = match r.status {
            Status::Succeeded => "ok",
            Status::Aborted => "aborted",
            _ => "fail",
        };
        let _ = write!(s, "<span class=\"spark {c}\" title=\"{} {}\">●</span>", r.status.as_str(), ts(r.finished));
    }
    s.push_str("</span>");
    s
}

async fn list(app: &State, project: Option<&str>) -> UiResult {
    let engine = engine_of(app)?;
    let who = caller();
    let now = app.clock.now();
    let mut rows = String::new();
    for j in engine.jobs().await? {
        if project.is_some_and(|p| p != j.state.def.project)
            || !app.job_access.allows(&who, JobPerm::Get, &j.state.def.realm)
        {
            continue;
        }
        if !j.state.enabled && j.state.problem.is_none() {
            continue; // removed from the configuration
        }
        let last = j.state.recent.first().map(|r| format!("{} {}", status_badge(r.status), ago(r.finished, now)));
        let problem =
            j.state.problem.as_deref().map(|p| format!("<div class=\"error\">{}</div>", esc(p))).unwrap_or_default();
        let _ = write!(
            rows,
            "<tr data-job=\"{id}\"><td><a href=\"{href}\">{id}</a>{problem}</td><td><code>{sched}</code></td>\
             <td class=\"job-state\">{state}</td><td>{next}</td><td>{last}</td><td>{spark}</td></tr>",
            id = esc(&j.job_id),
            href = esc(&job_href(&j)),
            sched = esc(&j.state.def.schedule),
            state = j.state.ui_status(),
            next = opt_ts(j.state.next_run()),
            last = last.unwrap_or_else(|| "—".into()),
            spark = sparkline(&j),
        );
    }
    let title = project.map(|p| format!("Jobs of {p}")).unwrap_or_else(|| "Jobs".into());
    let body = format!(
        "<h1>{}</h1><table class=\"jobs\"><thead><tr><th>Job</th><th>Schedule (UTC)</th><th>State</th>\
         <th>Next run</th><th>Last result</th><th>Recent runs</th></tr></thead><tbody>{rows}</tbody></table>",
        esc(&title)
    );
    Ok(layout(&title, "/jobs", &body).into_response())
}

async fn list_all(S(app): S<State>) -> UiResult {
    list(&app, None).await
}

async fn list_project(S(app): S<State>, Path(project): Path<String>) -> UiResult {
    list(&app, Some(&project)).await
}

#[derive(Deserialize)]
pub(crate) struct PageQ {
    after: Option<i64>,
}

fn button(action: &str, job: &str, inv: Option<i64>, label: &str, extra: &str) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"/ui/jobs/{action}\"><input type=\"hidden\" name=\"job\" value=\"{}\">\
         {}{extra}<button type=\"submit\" id=\"{action}\">{label}</button></form>",
        esc(job),
        inv.map(|i| format!("<input type=\"hidden\" name=\"inv\" value=\"{i}\">")).unwrap_or_default()
    )
}

fn trigger_row(t: &Trigger) -> String {
    let kind = match &t.payload {
        Payload::Cron { .. } => "schedule",
        Payload::Webui => "manual",
        Payload::Noop { .. } => "noop",
        Payload::Api { .. } => "api",
        Payload::Invocation { .. } => "job",
    };
    format!(
        "<tr><td><code>{}</code></td><td>{kind}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(&t.id),
        esc(&t.title),
        ts(t.created),
        esc(t.emitted_by_user.as_deref().or(t.emitter_job.as_deref()).unwrap_or("")),
    )
}

fn inv_duration(inv: &Invocation, now: Time) -> String {
    let end = inv.data.finished.unwrap_or(now);
    crate::ui::page::dur(muster_core::time::secs_between(inv.started, end))
}

async fn job_page(S(app): S<State>, Path((project, job)): Path<(String, String)>, Query(q): Query<PageQ>) -> UiResult {
    let who = caller();
    let id = format!("{project}/{job}");
    let j = require_job(&app, &who, &id, JobPerm::Get).await?;
    let engine = engine_of(&app)?;
    let now = app.clock.now();
    let realm = &j.state.def.realm;
    let mut actions = String::new();
    if app.job_access.allows(&who, JobPerm::Trigger, realm) && j.state.paused.is_none() {
        actions += &button("trigger", &id, None, "Trigger now", "");
    }
    if app.job_access.allows(&who, JobPerm::Pause, realm) {
        if j.state.paused.is_some() {
            actions += &button("resume", &id, None, "Resume", "");
        } else {
            actions +=
                &button("pause", &id, None, "Pause", "<input type=\"text\" name=\"reason\" placeholder=\"reason\">");
        }
    }
    if app.job_access.allows(&who, JobPerm::Abort, realm) && !j.state.active.is_empty() {
        actions += &button("abort", &id, None, "Abort running", "");
    }
    let paused = j
        .state
        .paused
        .as_ref()
        .map(|p| format!("<p class=\"paused\">Paused by {} at {}: {}</p>", esc(&p.by), ts(p.at), esc(&p.reason)))
        .unwrap_or_default();
    let mut pending = String::new();
    for t in engine.pending_triggers(&id).await? {
        pending += &trigger_row(&t);
    }
    let (invs, next) = engine.invocations(&id, q.after, 50).await?;
    let mut rows = String::new();
    for inv in &invs {
        let _ = write!(
            rows,
            "<tr data-inv=\"{i}\"><td><a href=\"/jobs/{p}/{jq}/{i}\">{i}</a></td><td>{st}</td><td>{started}</td>\
             <td>{d}</td><td>{by}</td><td>{sum}</td><td>{view}</td></tr>",
            i = inv.id,
            p = crate::ui::page::qv(&project),
            jq = crate::ui::page::qv(&job),
            st = status_badge(inv.status),
            started = ts(inv.started),
            d = inv_duration(inv, now),
            by = esc(inv.data.triggered_by.as_deref().unwrap_or("")),
            sum = esc(&inv.data.summary),
            view = if inv.data.view_url.is_empty() {
                String::new()
            } else {
                format!("<a href=\"{}\">task</a>", esc(&inv.data.view_url))
            },
        );
    }
    let more = next
        .map(|c| {
            format!(
                "<div class=\"pager\"><a class=\"next\" href=\"{}?after={c}\">Older →</a></div>",
                esc(&job_href(&j))
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>Job {id}</h1><div class=\"actions\">{actions}</div>{paused}{problem}\
         <table class=\"kv\"><tr><th>State</th><td id=\"job-state\">{state}</td></tr>\
         <tr><th>Schedule (UTC)</th><td><code>{sched}</code></td></tr><tr><th>Next run</th><td>{next_run}</td></tr>\
         <tr><th>Task</th><td>{kind}</td></tr><tr><th>Realm</th><td>{realm}</td></tr>\
         <tr><th>Triggers</th><td>{triggers}</td></tr><tr><th>Revision</th><td>{rev}</td></tr></table>\
         <h2>Pending triggers</h2><table class=\"triggers\"><thead><tr><th>Id</th><th>Kind</th><th>Title</th>\
         <th>Created</th><th>By</th></tr></thead><tbody>{pending}</tbody></table>\
         <h2>Invocations</h2><table class=\"invocations\"><thead><tr><th>Id</th><th>Status</th><th>Started</th>\
         <th>Duration</th><th>Triggered by</th><th>Summary</th><th></th></tr></thead><tbody>{rows}</tbody></table>{more}",
        id = esc(&id),
        problem = j.state.problem.as_deref().map(|p| format!("<p class=\"error\">{}</p>", esc(p))).unwrap_or_default(),
        state = j.state.ui_status(),
        sched = esc(&j.state.def.schedule),
        next_run = opt_ts(j.state.next_run()),
        kind = esc(&j.state.def.task.kind),
        realm = esc(realm),
        triggers = esc(&j.state.def.triggers.join(", ")),
        rev = esc(&j.state.revision),
    );
    Ok(layout(&format!("Job {id}"), "/jobs", &body).into_response())
}

async fn invocation_page(S(app): S<State>, Path((project, job, inv)): Path<(String, String, i64)>) -> UiResult {
    let who = caller();
    let id = format!("{project}/{job}");
    let j = require_job(&app, &who, &id, JobPerm::Get).await?;
    let engine = engine_of(&app)?;
    let inv = engine.invocation(&id, inv).await?;
    let now = app.clock.now();
    let abort = if !inv.status.is_final() && app.job_access.allows(&who, JobPerm::Abort, &j.state.def.realm) {
        button("abort-invocation", &id, Some(inv.id), "Abort", "")
    } else {
        String::new()
    };
    let rows = |ts: &[Trigger]| ts.iter().map(trigger_row).collect::<String>();
    let mut timers = String::new();
    for (row, data) in engine.timers(inv.id).await? {
        let _ = write!(timers, "<tr><td>{}</td><td>{}</td></tr>", esc(&data.title), ts(row.due));
    }
    let stuck = if !inv.status.is_final() && now - inv.started > chrono::Duration::days(1) {
        "<p class=\"error\">Active for more than a day: consider aborting it.</p>"
    } else {
        ""
    };
    let body = format!(
        "<h1>Invocation {i} of <a href=\"{href}\">{id}</a></h1><div class=\"actions\">{abort}</div>{stuck}\
         <table class=\"kv\"><tr><th>Status</th><td id=\"inv-status\">{st}</td></tr><tr><th>Summary</th><td>{sum}</td></tr>\
         <tr><th>Started</th><td>{started}</td></tr><tr><th>Finished</th><td>{fin}</td></tr>\
         <tr><th>Duration</th><td>{d}</td></tr><tr><th>Triggered by</th><td>{by}</td></tr>\
         <tr><th>Launch attempts</th><td>{tries}</td></tr><tr><th>Task</th><td>{view}</td></tr>\
         <tr><th>Revision</th><td>{rev}</td></tr></table>\
         <h2>Incoming triggers</h2><table class=\"triggers\"><tbody>{inc}</tbody></table>\
         <h2>Outgoing triggers</h2><table class=\"triggers\"><tbody>{out}</tbody></table>\
         <h2>Timers</h2><table><tbody>{timers}</tbody></table>\
         <h2>Debug log</h2><pre class=\"output\" id=\"debug-log\">{log}</pre>",
        i = inv.id,
        href = esc(&job_href(&j)),
        id = esc(&id),
        st = status_badge(inv.status),
        sum = esc(&inv.data.summary),
        started = ts(inv.started),
        fin = opt_ts(inv.data.finished),
        d = inv_duration(&inv, now),
        by = esc(inv.data.triggered_by.as_deref().unwrap_or("")),
        tries = inv.data.retry_count,
        view = if inv.data.view_url.is_empty() {
            "—".to_string()
        } else {
            format!("<a href=\"{0}\">{0}</a>", esc(&inv.data.view_url))
        },
        rev = esc(&inv.data.revision),
        inc = rows(&inv.data.incoming),
        out = rows(&inv.data.outgoing),
        log = esc(&inv.data.debug_log),
    );
    Ok(layout(&format!("Invocation {}", inv.id), "/jobs", &body).into_response())
}

#[derive(Deserialize)]
pub(crate) struct ActionForm {
    job: String,
    inv: Option<i64>,
    #[serde(default)]
    reason: String,
}

async fn action(S(app): S<State>, Path(action): Path<String>, Form(f): Form<ActionForm>) -> UiResult {
    let who = caller();
    let perm = match action.as_str() {
        "trigger" => JobPerm::Trigger,
        "pause" | "resume" => JobPerm::Pause,
        "abort" | "abort-invocation" => JobPerm::Abort,
        other => return Err(UiError::not_found(format!("no action {other:?}"))),
    };
    let j = require_job(&app, &who, &f.job, perm).await?;
    let engine = engine_of(&app)?;
    match action.as_str() {
        "trigger" => {
            engine.trigger_now(&f.job, &who, None, Payload::Webui).await?;
        }
        "pause" => engine.pause(&f.job, &who, &f.reason).await?,
        "resume" => engine.resume(&f.job).await?,
        "abort" => {
            engine.abort_job(&f.job, &who).await?;
        }
        _ => {
            let inv = f.inv.ok_or_else(|| UiError::bad("inv is required"))?;
            engine.abort_invocation(&f.job, inv, &who).await?;
            return Ok(Redirect::to(&format!("{}/{inv}", job_href(&j))).into_response());
        }
    }
    Ok(Redirect::to(&job_href(&j)).into_response())
}
