//! Tasks: `/tasklist` (filter by state, tags, time range, name; counts by
//! state; cursor pages), `/task?id=` (request, result, live output, buttons)
//! and `/task/raw?id=[&offset=]` (raw output bytes; the live view polls it).

use super::auth::{self, Perm};
use super::page::{chips, dur, esc, layout, link, opt_ts, state_badge, state_label, ts};
use super::{page_limit, parse_filters, UiError, UiResult};
use crate::State;
use axum::body::Body;
use axum::extract::{Query, State as S};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDateTime, TimeZone, Utc};
use muster_core::state::StateQuery;
use muster_core::time::secs_between;
use muster_core::{TaskId, TaskRequest, TaskResult, TaskState, Time};
use muster_store::{TaskQuery, OUTPUT_CHUNK_SIZE, OUTPUT_MAX_CHUNKS};
use serde::Deserialize;
use std::fmt::Write as _;

/// One live-output poll returns at most this much.
const POLL_OUTPUT_BYTES: u64 = 256 * 1024;
/// A name filter scans at most this many store pages per listing page.
const NAME_SCAN_PAGES: usize = 10;

/// The state filters the task list offers: (query value, label, StateQuery).
pub(crate) const STATES: [(&str, &str, StateQuery); 13] = [
    ("all", "All", StateQuery::All),
    ("pending", "Pending", StateQuery::Pending),
    ("running", "Running", StateQuery::Running),
    ("pending_running", "Pending+Running", StateQuery::PendingRunning),
    ("completed", "Completed", StateQuery::Completed),
    ("completed_success", "Success", StateQuery::CompletedSuccess),
    ("completed_failure", "Failure", StateQuery::CompletedFailure),
    ("expired", "Expired", StateQuery::Expired),
    ("timed_out", "Timed out", StateQuery::TimedOut),
    ("bot_died", "Bot died", StateQuery::BotDied),
    ("canceled", "Canceled", StateQuery::Canceled),
    ("killed", "Killed", StateQuery::Killed),
    ("no_resource", "No resource", StateQuery::NoResource),
];

/// The counts shown on top of the task list.
const COUNTED: [&str; 9] = [
    "all",
    "pending",
    "running",
    "completed_success",
    "completed_failure",
    "expired",
    "bot_died",
    "canceled",
    "killed",
];

fn state_of(v: &str) -> UiResult<StateQuery> {
    if v.is_empty() {
        return Ok(StateQuery::All);
    }
    STATES
        .iter()
        .find(|(k, _, _)| *k == v)
        .map(|(_, _, q)| *q)
        .ok_or_else(|| UiError::bad(format!("unknown state {v:?}")))
}

/// `2044-01-01T10:00` (a datetime-local input, UTC) or RFC 3339.
fn parse_time(v: &str) -> UiResult<Option<Time>> {
    if v.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    for f in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(v, f) {
            return Ok(Some(Utc.from_utc_datetime(&n)));
        }
    }
    Err(UiError::bad(format!("bad time {v:?}: expected YYYY-MM-DDTHH:MM (UTC)")))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListParams {
    #[serde(default)]
    state: String,
    /// Tag filters, `key:value` separated by spaces.
    #[serde(default)]
    tags: String,
    /// Substring of the task name.
    #[serde(default)]
    name: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    end: String,
    limit: Option<usize>,
    #[serde(default)]
    cursor: String,
    /// The cursors of the pages before this one, space-separated (the
    /// store pages forward only; Previous pops one).
    #[serde(default)]
    back: String,
}

/// Page sizes the task list offers.
const PAGE_SIZES: [usize; 3] = [20, 50, 100];

/// The value of tag `key` (`pool:ci` → `ci`), or "".
fn tag_value<'a>(tags: &'a [String], key: &str) -> &'a str {
    tags.iter().find_map(|t| t.strip_prefix(key).and_then(|r| r.strip_prefix(':'))).unwrap_or("")
}

/// Adds `tag` to a tag filter (unless there already).
fn with_tag(filter: &str, tag: &str) -> String {
    if filter.split_whitespace().any(|t| t == tag) {
        filter.to_string()
    } else {
        format!("{} {tag}", filter.trim()).trim().to_string()
    }
}

pub(crate) async fn list_page(S(app): S<State>, headers: HeaderMap, Query(p): Query<ListParams>) -> UiResult {
    auth::check(&headers, Perm::Read)?;
    let state = state_of(&p.state)?;
    let tags = crate::access::scope_listing(
        &crate::access::current(),
        parse_filters(&p.tags)?,
        muster_access::perms::POOLS_LIST_TASKS,
    )?;
    let (start, end) = (parse_time(&p.start)?, parse_time(&p.end)?);
    if let (Some(s), Some(e)) = (start, end) {
        if s >= e {
            return Err(UiError::bad("the start time must be before the end time"));
        }
    }
    let limit = page_limit(p.limit);
    let base = TaskQuery { state, tags: tags.clone(), start, end, ..Default::default() };

    // A page: straight from the store, or (name filter) a bounded scan.
    let mut items: Vec<TaskResult> = Vec::new();
    let mut cursor = (!p.cursor.is_empty()).then(|| p.cursor.clone());
    let needle = p.name.to_lowercase();
    for _ in 0..NAME_SCAN_PAGES {
        let q = TaskQuery { limit: limit - items.len(), cursor: cursor.clone(), ..base.clone() };
        let page = app.store.list_results(&q).await?;
        items.extend(page.items.into_iter().filter(|r| needle.is_empty() || r.name.to_lowercase().contains(&needle)));
        cursor = page.cursor;
        if items.len() >= limit || cursor.is_none() || needle.is_empty() {
            break;
        }
    }

    let mut b = String::from("<h1>Tasks</h1><div class=\"counts\" id=\"task-counts\">");
    for key in COUNTED {
        let q = state_of(key)?;
        let n = app.store.count_results(&TaskQuery { state: q, ..base.clone() }).await?;
        let label = STATES.iter().find(|(k, _, _)| *k == key).map(|(_, l, _)| *l).unwrap_or(key);
        let current = if p.state == key || (p.state.is_empty() && key == "all") { " current" } else { "" };
        let _ = write!(
            b,
            "<a class=\"count{current}\" data-count=\"{key}\" href=\"{}\"><span class=\"n\">{n}</span> {label}</a>",
            esc(&link(
                "/tasklist",
                &[("state", key), ("tags", &p.tags), ("name", &p.name), ("start", &p.start), ("end", &p.end)]
            )),
        );
    }
    b.push_str("</div>");
    let keep = |extra: &[(&str, &str)]| -> String {
        let limit_s = limit.to_string();
        let mut q: Vec<(&str, &str)> = vec![
            ("state", &p.state),
            ("tags", &p.tags),
            ("name", &p.name),
            ("start", &p.start),
            ("end", &p.end),
            ("limit", &limit_s),
        ];
        q.extend_from_slice(extra);
        link("/tasklist", &q)
    };
    let next = cursor.as_deref().map(|c| {
        let back = format!("{} {}", p.back, if p.cursor.is_empty() { "-" } else { &p.cursor });
        keep(&[("cursor", c), ("back", back.trim())])
    });
    let prev = (!p.cursor.is_empty()).then(|| {
        let mut back: Vec<&str> = p.back.split_whitespace().collect();
        let c = back.pop().filter(|c| *c != "-").unwrap_or("");
        keep(&[("cursor", c), ("back", &back.join(" "))])
    });
    let form = maud::html! {
        form.filters method="get" action="/tasklist" {
            label { "State"
                select #state name="state" {
                    @for (k, l, _) in STATES { option value=(k) selected[p.state == k || (p.state.is_empty() && k == "all")] { (l) } }
                }
            }
            label { "Tags" input #tags type="text" name="tags" value=(p.tags) placeholder="pool:ci os:Linux" size="30"; }
            label { "Name" input #name type="text" name="name" value=(p.name) size="16"; }
            label { "From" input type="datetime-local" name="start" value=(p.start); }
            label { "To" input type="datetime-local" name="end" value=(p.end); }
            label { "Per page"
                select #limit name="limit" {
                    @for n in &PAGE_SIZES { option value=(n) selected[*n == limit] { (n) } }
                }
            }
            span.hint { "times in UTC" }
            button #apply type="submit" { "Apply" }
        }
        div.tablewrap {
        table.list.sortable #tasks {
            thead { tr {
                th { "Name" } th { "State" } th { "User" } th { "Priority" } th { "Pool" } th { "Created" }
                th { "Pending" } th { "Duration" } th { "Bot" } th { "Exit" } th { "Tags" }
            } }
            tbody {
                @for t in &items {
                    @let pending = t.started.map(|s| dur(secs_between(t.created, s))).unwrap_or_else(|| "—".into());
                    @let pool = tag_value(&t.tags, "pool");
                    tr.task data-task=(t.id.summary_id()) {
                        td { a href={ "/task?id=" (t.id.summary_id()) } { (if t.name.is_empty() { "(unnamed)" } else { &t.name }) } }
                        td { (maud::PreEscaped(state_badge(t.state, t.failure))) }
                        td.nowrap { (if t.user.is_empty() { "—" } else { &t.user }) }
                        td { (tag_value(&t.tags, "priority")) }
                        td.nowrap { @if !pool.is_empty() { a href=(keep(&[("tags", &with_tag(&p.tags, &format!("pool:{pool}")))])) { (pool) } } }
                        td.nowrap data-sort=(t.created.timestamp_micros()) { (ts(t.created)) }
                        td.nowrap { (pending) }
                        td.nowrap { (t.duration.map(dur).unwrap_or_else(|| "—".into())) }
                        td.nowrap { @if t.bot_id.is_empty() { "—" } @else { a href=(link("/bot", &[("id", &t.bot_id)])) { (t.bot_id) } } }
                        td { (t.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "—".into())) }
                        td.dims {
                            @for tag in t.tags.iter().filter(|t| !is_automatic_tag(t) && !t.starts_with("pool:")) {
                                a.chip href=(keep(&[("tags", &with_tag(&p.tags, tag))])) title="Show tasks with this tag" { (tag) }
                            }
                        }
                    }
                }
                @if items.is_empty() { tr { td.empty colspan="11" { "No tasks match." } } }
            }
        }
        }
        nav.pager aria-label="Pages" {
            @if let Some(h) = &prev { a.prev href=(h) rel="prev" { "← Previous" } }
            @if let Some(h) = &next { a.next href=(h) rel="next" { "Next page →" } }
            a href=(keep(&[])) { "First page" }
        }
    };
    b.push_str(&form.into_string());
    Ok(layout("Tasks", "/tasklist", &b).into_response())
}

/// Tags the server adds to every task (shown on the task page only).
fn is_automatic_tag(t: &str) -> bool {
    let key = t.split_once(':').map_or(t, |(k, _)| k);
    matches!(key, "priority" | "realm" | "service_account" | "user" | "authenticated" | "swarming.pool.task_template")
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TaskParams {
    #[serde(default)]
    id: String,
}

fn parse_id(id: &str) -> UiResult<TaskId> {
    if id.is_empty() {
        return Err(UiError::bad("missing task id (?id=)"));
    }
    Ok(TaskId::parse(id)?)
}

async fn load(app: &State, id: TaskId) -> UiResult<(TaskRequest, TaskResult)> {
    let request = app.store.get_request(id).await?;
    let result = app.store.get_result(id).await?;
    match (request, result) {
        (Some(q), Some(r)) => Ok((q, r)),
        _ => Err(UiError::not_found(format!("no task {}", id.summary_id()))),
    }
}

pub(crate) async fn task_page(S(app): S<State>, headers: HeaderMap, Query(p): Query<TaskParams>) -> UiResult {
    let caller = auth::check(&headers, Perm::Read)?;
    let id = parse_id(&p.id)?;
    let (req, res) = load(&app, id).await?;
    let now = app.clock.now();
    let sid = id.summary_id();
    caller.ctx.checker().check_task(&crate::access::request_acl(&app, &sid, &req), muster_access::perms::TASKS_GET)?;

    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>{name} <span class=\"mono small\">{sid}</span> <span id=\"task-state\" aria-live=\"polite\">{st}</span></h1>",
        name = esc(if req.name.is_empty() { "(unnamed task)" } else { &req.name }),
        st = state_badge(res.state, res.failure),
    );
    b.push_str("<div class=\"actions\">");
    if auth::allows_task(&caller, &sid, &res.tags) {
        if res.state == TaskState::Pending {
            let _ = write!(
                b,
                "<form method=\"post\" action=\"/ui/task/cancel\" data-confirm=\"Cancel this pending task?\">\
                 <input type=\"hidden\" name=\"id\" value=\"{sid}\"><button id=\"cancel\" class=\"danger\">Cancel</button></form>"
            );
        }
        if res.state == TaskState::Running {
            let _ = write!(
                b,
                "<form method=\"post\" action=\"/ui/task/kill\" data-confirm=\"Kill this running task?\">\
                 <input type=\"hidden\" name=\"id\" value=\"{sid}\"><button id=\"kill\" class=\"danger\">Kill</button></form>"
            );
        }
    }
    if auth::allows_new_task(&caller, req.pool()) && !req.is_termination() {
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/ui/task/retry\" data-confirm=\"Run this task again as a new task?\">\
             <input type=\"hidden\" name=\"id\" value=\"{sid}\">\
             <input type=\"hidden\" name=\"request_uuid\" value=\"{uuid}\"><button id=\"retry\">Retry</button></form>",
            uuid = uuid::Uuid::new_v4()
        );
    }
    b.push_str("</div>");

    if let Some(text) = explain(&req, &res) {
        b.push_str(&maud::html! { p.explain #explain role="note" { (text) } }.into_string());
    }
    if matches!(res.state, TaskState::Pending | TaskState::NoResource) {
        if let Ok(why) = app.sched.why_pending(res.id, now).await {
            b.push_str(&super::why::section(&why));
        }
    }
    // Output: head and tail, the rest on demand (ui.js).
    b.push_str(&super::log::section(&app, &res, &sid).await?.into_string());
    // Result.
    b.push_str("<div class=\"cols\"><section><h2>Result</h2><table class=\"kv\" id=\"result\">");
    let bot = if res.bot_id.is_empty() {
        "—".into()
    } else {
        format!("<a href=\"{}\">{}</a>", esc(&link("/bot", &[("id", &res.bot_id)])), esc(&res.bot_id))
    };
    let pending_for = match res.started {
        Some(s) => dur(secs_between(res.created, s)),
        None if res.state == TaskState::Pending => format!("{} (so far)", dur(secs_between(res.created, now))),
        None => dur(secs_between(res.created, res.completed.or(res.abandoned).unwrap_or(res.modified))),
    };
    let rows: Vec<(&str, String)> = vec![
        ("State", state_badge(res.state, res.failure)),
        ("Bot", bot),
        ("Exit code", res.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "—".into())),
        ("Duration", res.duration.map(dur).unwrap_or_else(|| "—".into())),
        ("Pending time", pending_for),
        ("Created", ts(res.created)),
        ("Started", opt_ts(res.started)),
        ("Completed", opt_ts(res.completed)),
        ("Abandoned", opt_ts(res.abandoned)),
        ("Current slice", res.current_slice.to_string()),
        ("Internal failure", if res.internal_failure { "yes".into() } else { "no".into() }),
        ("Deduped from", esc(&res.deduped_from)),
        ("Cost (USD)", format!("{:.4}", res.cost_usd)),
        ("Bot version", format!("<span class=\"mono\">{}</span>", esc(&res.bot_version))),
        ("Run id", format!("<span class=\"mono\">{}</span>", esc(&res.run_id()))),
    ];
    for (k, v) in rows {
        let _ = write!(b, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    b.push_str("</table></section>");

    // Request.
    b.push_str("<section><h2>Request</h2><table class=\"kv\" id=\"request\">");
    let rows: Vec<(&str, String)> = vec![
        ("Priority", req.priority.to_string()),
        ("User", esc(&req.user)),
        ("Authenticated", esc(&req.authenticated)),
        ("Service account", esc(&req.service_account)),
        ("Realm", esc(&req.realm)),
        ("Parent task", esc(&req.parent_task_id)),
        ("Tags", chips(&req.tags)),
    ];
    for (k, v) in rows {
        let _ = write!(b, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    b.push_str("</table>");
    for (i, s) in req.slices.iter().enumerate() {
        let pr = &s.properties;
        let active = if i as i32 == res.current_slice { " active" } else { "" };
        let _ = write!(b, "<h3 class=\"slice{active}\">Slice {i}</h3><table class=\"kv slice\">");
        let dims: Vec<String> = pr.dimensions.0.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        let env: Vec<String> = pr.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let rows: Vec<(&str, String)> = vec![
            ("Dimensions", chips(&dims)),
            ("Command", format!("<code>{}</code>", esc(&shell_words(&pr.command)))),
            ("Working dir", esc(&pr.relative_cwd)),
            ("Env", chips(&env)),
            ("Expiration", dur(s.expiration_secs as f64)),
            ("Execution timeout", dur(pr.execution_timeout_secs as f64)),
            ("I/O timeout", dur(pr.io_timeout_secs as f64)),
            ("Grace period", dur(pr.grace_period_secs as f64)),
            ("Idempotent", if pr.idempotent { "yes".into() } else { "no".into() }),
            ("Wait for capacity", if s.wait_for_capacity { "yes".into() } else { "no".into() }),
        ];
        for (k, v) in rows {
            let _ = write!(b, "<tr><th>{k}</th><td>{v}</td></tr>");
        }
        b.push_str("</table>");
    }
    b.push_str("</section></div>");

    // The state leads the tab title, so a tab left open tells how it went.
    let title =
        format!("{} · {}", state_label(res.state, res.failure), if req.name.is_empty() { &sid } else { &req.name });
    Ok(layout(&title, "/tasklist", &b).into_response())
}

/// What an end state means for this task, in words (None: nothing to add).
fn explain(req: &TaskRequest, res: &TaskResult) -> Option<String> {
    let slice = req.slices.get(res.current_slice.max(0) as usize);
    let bot = if res.bot_id.is_empty() { "its bot".to_string() } else { format!("bot {}", res.bot_id) };
    Some(match res.state {
        TaskState::BotDied => format!(
            "The task was running on {bot} when the bot stopped reporting (it crashed, lost its network or was \
             shut down), so the task's outcome is unknown.{} Retrying usually works; if it keeps happening, look \
             at the bot's events.",
            if res.internal_failure { " The bot reported an internal failure." } else { "" }
        ),
        TaskState::TimedOut => {
            let (hard, io) =
                slice.map_or((0, 0), |s| (s.properties.execution_timeout_secs, s.properties.io_timeout_secs));
            let ran = res.duration.unwrap_or(0.0);
            if hard > 0 && ran + 1.0 >= hard as f64 {
                format!(
                    "The task ran for {} and hit its execution timeout of {}; the bot stopped it. Raise the \
                     execution timeout or make the task faster.",
                    dur(ran),
                    dur(hard as f64)
                )
            } else {
                format!(
                    "The task printed nothing for {} (its I/O timeout) and was stopped after running {}. A hung \
                     command is the usual cause; a task that is quiet for long should print progress or raise \
                     its I/O timeout.",
                    dur(io as f64),
                    dur(ran)
                )
            }
        }
        TaskState::Killed => {
            "Someone killed the task while it ran (Kill on this page, the API or the CLI); the bot stopped the \
             command, which had its grace period to clean up."
                .to_string()
        }
        TaskState::Expired => format!(
            "No bot matching the task's dimensions became free within its expiration ({}), so it never ran. \
             Check that bots with these dimensions are alive and not all busy.",
            slice.map(|s| dur(s.expiration_secs as f64)).unwrap_or_else(|| "—".into())
        ),
        TaskState::NoResource => {
            "No bot with the task's dimensions exists (or none is alive), so the task was refused at once rather \
             than waiting. Check the dimensions, or allow waiting for capacity."
                .to_string()
        }
        TaskState::Canceled => "The task was canceled before it started; it never ran.".to_string(),
        TaskState::ClientError => {
            "The task's request could not be run as given (for example missing inputs).".to_string()
        }
        TaskState::Completed if res.failure => format!(
            "The command ran and exited with code {}.",
            res.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "—".into())
        ),
        _ => return None,
    })
}

/// Quotes a command for display.
fn shell_words(cmd: &[String]) -> String {
    cmd.iter()
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawParams {
    #[serde(default)]
    id: String,
    /// Live view: bytes from here, at most POLL_OUTPUT_BYTES.
    offset: Option<u64>,
}

/// Raw output bytes. The `X-Muster-Task-State` header carries the task
/// state so the live view knows when to stop polling.
pub(crate) async fn raw_output(S(app): S<State>, headers: HeaderMap, Query(p): Query<RawParams>) -> UiResult<Response> {
    auth::check(&headers, Perm::Read)?;
    let id = parse_id(&p.id)?;
    let res = app.store.get_result(id).await?.ok_or_else(|| UiError::not_found(format!("no task {}", p.id)))?;
    let mut resp = match p.offset {
        Some(offset) => app.store.read_output(res.output_of, offset, POLL_OUTPUT_BYTES).await?.into_response(),
        None => Body::from_stream(output_stream(app.store.clone(), res.output_of)).into_response(),
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    h.insert("x-muster-task-state", header::HeaderValue::from_static(res.state.name()));
    if p.offset.is_none() {
        if let Ok(v) = header::HeaderValue::try_from(format!("inline; filename=\"{}.txt\"", id.summary_id())) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(resp)
}

/// A whole task output, read from the store one slice at a time as the
/// client takes it: memory per download stays one slice, however large the
/// output and however slow the reader. Ends at the end of the output (or
/// with an error, which aborts the response).
fn output_stream(
    store: std::sync::Arc<dyn muster_store::Store>,
    task: muster_core::TaskId,
) -> impl futures::Stream<Item = Result<Vec<u8>, muster_store::StoreError>> {
    futures::stream::try_unfold(Some(0u64), move |next| {
        let store = store.clone();
        async move {
            let Some(offset) = next else { return Ok(None) };
            let limit = OUTPUT_CHUNK_SIZE * OUTPUT_MAX_CHUNKS;
            let length = OUTPUT_CHUNK_SIZE.min(limit.saturating_sub(offset));
            if length == 0 {
                return Ok(None);
            }
            let bytes = store.read_output(task, offset, length).await?;
            if bytes.is_empty() {
                return Ok(None);
            }
            let more = bytes.len() as u64 == length;
            let next = more.then_some(offset + bytes.len() as u64);
            Ok(Some((bytes, next)))
        }
    })
}
