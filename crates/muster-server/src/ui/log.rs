//! The task log viewer's server half. The page shows the head and the tail
//! of a task's output as numbered lines (the tail is where failures are);
//! the rest comes in slices from `/task/log` as the viewer asks ("load
//! more" either way, a jump to a line or a search hit), and a running task's
//! new lines come the same way. `/task/log/search` finds lines. Nothing
//! sends the whole output to the browser: every answer is at most one slice
//! ([`SLICE_BYTES`], [`SLICE_LINES`]).
//!
//! Slices start and end at line starts, so rendering ([`ansi::render_lines`],
//! a terminal's view: `\r` overwrites) needs no state from before the slice
//! but the rendition, which a following slice carries as `sgr=`. A slice
//! reached by a jump starts in the plain rendition.

use super::ansi::{self, AnsiState, Line};
use super::auth::{self, Perm};
use super::{UiError, UiResult};
use crate::State;
use axum::extract::{Query, State as S};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped};
use muster_core::{TaskId, TaskResult, TaskState};
use muster_store::Store;
use serde::{Deserialize, Serialize};

/// The most bytes one slice covers.
pub(crate) const SLICE_BYTES: u64 = 128 * 1024;
/// The most lines one slice has.
pub(crate) const SLICE_LINES: usize = 2000;
/// The head shown on the page: the first lines (checkout, setup).
const HEAD_BYTES: u64 = 16 * 1024;
const HEAD_LINES: usize = 100;
/// Lines shown above a line jumped to.
const CONTEXT_LINES: u64 = 20;
/// Scans (line counts, search) read this much per store read.
const SCAN_BYTES: u64 = 1024 * 1024;
/// A search returns at most this many hits.
const MAX_MATCHES: usize = 1000;

/// Whole lines `[from, to)` of the output, the first numbered `line` (1-based).
#[derive(Debug)]
pub(crate) struct Slice {
    from: u64,
    to: u64,
    line: u64,
    lines: Vec<Line>,
    /// The rendition after the slice.
    sgr: String,
}

impl Slice {
    fn next_line(&self) -> u64 {
        self.line + self.lines.len() as u64
    }

    fn markup(&self) -> Markup {
        html! {
            div.seg data-from=(self.from) data-to=(self.to) data-line=(self.line) data-next=(self.next_line()) {
                (lines(self.line, &self.lines))
            }
        }
    }
}

fn lines(first: u64, lines: &[Line]) -> Markup {
    html! {
        @for (i, l) in lines.iter().enumerate() {
            @let n = first + i as u64;
            div.l id={ "L" (n) } { a.n href={ "#L" (n) } { (n) } span.t { (PreEscaped(&l.html)) } }
        }
    }
}

/// Where the `max_lines`-th newline of `b` ends, else where its last does.
fn cut_forward(b: &[u8], max_lines: usize) -> Option<usize> {
    let mut last = None;
    for (k, i) in memchr::memchr_iter(b'\n', b).enumerate() {
        last = Some(i + 1);
        if k + 1 >= max_lines {
            break;
        }
    }
    last
}

/// Whole lines from `from` (a line start numbered `line`), at most
/// `max_bytes`/`max_lines`, never past `until`. A line longer than a slice
/// is cut (its rest starts the next slice, under the same number).
async fn forward(
    store: &dyn Store,
    task: TaskId,
    from: u64,
    line: u64,
    until: u64,
    (max_bytes, max_lines): (u64, usize),
    sgr: &str,
) -> UiResult<Slice> {
    let len = until.saturating_sub(from).min(max_bytes);
    let bytes = if len == 0 { Vec::new() } else { store.read_output(task, from, len).await? };
    let cut = match cut_forward(&bytes, max_lines) {
        Some(c) => c,
        None if bytes.len() as u64 == max_bytes => bytes.len(),
        None => 0,
    };
    let mut st = AnsiState::default();
    st.apply(sgr);
    let (mut lines, partial) = ansi::render_lines(&bytes[..cut], &mut st);
    lines.extend(partial);
    Ok(Slice { from, to: from + cut as u64, line, lines, sgr: st.sgr() })
}

/// Whole lines ending at `before` (a line start numbered `line`), at most
/// one slice, never before `after`.
async fn backward(store: &dyn Store, task: TaskId, before: u64, line: u64, after: u64) -> UiResult<Slice> {
    let start = before.saturating_sub(SLICE_BYTES).max(after);
    let bytes = if before > start { store.read_output(task, start, before - start).await? } else { Vec::new() };
    // Start at a line start: after the first newline unless at `after`.
    let mut skip = if start == after { 0 } else { memchr::memchr(b'\n', &bytes).map_or(0, |i| i + 1) };
    // At most SLICE_LINES lines: start after the (n+1)-th newline from the end.
    let body = bytes.get(skip..).unwrap_or_default();
    let ends_in_newline = body.last() == Some(&b'\n');
    let extra = usize::from(ends_in_newline);
    if let Some(i) = memchr::memrchr_iter(b'\n', body).nth(SLICE_LINES - 1 + extra) {
        skip += i + 1;
    }
    let body = bytes.get(skip..).unwrap_or_default();
    let (mut lines, partial) = ansi::render_lines(body, &mut AnsiState::default());
    lines.extend(partial);
    let count = memchr::memchr_iter(b'\n', body).count() as u64;
    let first = line.saturating_sub(count).max(1);
    Ok(Slice { from: start + skip as u64, to: before, line: first, lines, sgr: String::new() })
}

/// What a scan of the whole output learnt.
struct Extent {
    /// The output's length.
    total: u64,
    /// Where the last line starts (after the last newline).
    last_start: u64,
    /// Newlines in the output.
    newlines: u64,
}

/// Reads the output from `from` in [`SCAN_BYTES`] blocks, calling `f` with
/// each block's offset and bytes, until the end or `f` says stop.
async fn scan(store: &dyn Store, task: TaskId, from: u64, mut f: impl FnMut(u64, &[u8]) -> bool) -> UiResult<u64> {
    let mut at = from;
    loop {
        let b = store.read_output(task, at, SCAN_BYTES).await?;
        if b.is_empty() || !f(at, &b) {
            return Ok(at + b.len() as u64);
        }
        at += b.len() as u64;
        if (b.len() as u64) < SCAN_BYTES {
            return Ok(at);
        }
    }
}

async fn extent(store: &dyn Store, task: TaskId) -> UiResult<Extent> {
    let (mut last_start, mut newlines) = (0, 0);
    let total = scan(store, task, 0, |at, b| {
        newlines += memchr::memchr_iter(b'\n', b).count() as u64;
        if let Some(i) = memchr::memrchr(b'\n', b) {
            last_start = at + i as u64 + 1;
        }
        true
    })
    .await?;
    Ok(Extent { total, last_start, newlines })
}

/// The offset where line `target` starts, scanning from `from` (line `line`).
async fn find_line(store: &dyn Store, task: TaskId, from: u64, line: u64, target: u64) -> UiResult<(u64, u64)> {
    if target <= line {
        return Ok((from, line));
    }
    let mut need = target - line;
    let mut found = None;
    scan(store, task, from, |at, b| {
        for i in memchr::memchr_iter(b'\n', b) {
            need -= 1;
            if need == 0 {
                found = Some(at + i as u64 + 1);
                return false;
            }
        }
        true
    })
    .await?;
    Ok(match found {
        Some(at) => (at, target),
        None => (from, line),
    })
}

/// The line after the last newline (from `at`), if it has any text.
async fn unfinished(store: &dyn Store, task: TaskId, at: u64, sgr: &str) -> UiResult<Vec<Line>> {
    let b = store.read_output(task, at, SLICE_BYTES).await?;
    let mut st = AnsiState::default();
    st.apply(sgr);
    let (mut l, last) = ansi::render_lines(&b, &mut st);
    l.extend(last);
    l.truncate(1);
    Ok(l)
}

fn is_live(s: TaskState) -> bool {
    matches!(s, TaskState::Pending | TaskState::Running)
}

/// The log viewer of the task page: head, a gap to load, tail, and (while
/// the task runs) its unfinished last line.
pub(crate) async fn section(app: &State, res: &TaskResult, sid: &str) -> UiResult<Markup> {
    let store = app.store.as_ref();
    let task = res.output_of;
    let ext = extent(store, task).await?;
    let live = is_live(res.state);
    // A finished task's last line (no newline after it) is a line too.
    let end = if live { ext.last_start } else { ext.total };
    let end_line = ext.newlines + 1;
    let head = forward(store, task, 0, 1, end, (HEAD_BYTES, HEAD_LINES), "").await?;
    let tail = backward(store, task, end, end_line, head.to).await?;
    let hidden = tail.line.saturating_sub(head.next_line());
    let partial = if live { unfinished(store, task, ext.last_start, &tail.sgr).await? } else { Vec::new() };
    let empty = head.lines.is_empty() && tail.lines.is_empty() && partial.is_empty();
    Ok(html! {
        div.logbar {
            h2 #output-title { "Output " @if live { span.live #live { "live" } } }
            form.logsearch #logsearch role="search" {
                label.sr for="logq" { "Search the output" }
                input #logq type="search" name="q" placeholder="Search output" autocomplete="off";
                button #logfind type="submit" { "Find" }
                button #logprev type="button" aria-label="Previous match" { "↑" }
                button #lognext type="button" aria-label="Next match" { "↓" }
                span #loghits .hint aria-live="polite" {}
            }
            label.follow { input #follow type="checkbox" checked[live]; " Follow" }
            a.button #raw href={ "/task/raw?id=" (sid) } { "Raw" }
        }
        div.log #output role="log" aria-labelledby="output-title" tabindex="0"
            data-task=(sid) data-state=(res.state.name()) data-live=(live)
            data-end=(end) data-next=(if live { end_line } else { tail.next_line() })
            data-sgr=(tail.sgr) data-bytes=(ext.total) data-lines=(ext.newlines + u64::from(ext.total > ext.last_start)) {
            @if empty { p.empty #nooutput { @if live { "No output yet." } @else { "No output." } } }
            (head.markup())
            @if tail.from > head.to { (gap(hidden)) }
            (tail.markup())
            div.partial #partial { (lines(end_line, &partial)) }
        }
    })
}

fn gap(hidden: u64) -> Markup {
    html! {
        div.gap {
            button.more data-dir="down" type="button" { "Load more ↓" }
            span.hint { (hidden) " lines not shown" }
            button.more data-dir="up" type="button" { "Load more ↑" }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SliceParams {
    #[serde(default)]
    id: String,
    /// Forward from this line start...
    from: Option<u64>,
    /// ...or backward to this one.
    before: Option<u64>,
    /// The number of the line at `from`/`before`.
    line: Option<u64>,
    /// Forward: never past this offset; backward: never before it.
    until: Option<u64>,
    after: Option<u64>,
    /// Jump: the slice starts a few lines above this line.
    goto: Option<u64>,
    /// The rendition at `from`.
    #[serde(default)]
    sgr: String,
}

#[derive(Debug, Serialize)]
struct SliceReply {
    from: u64,
    to: u64,
    line: u64,
    next: u64,
    sgr: String,
    html: String,
    /// A running task's unfinished last line (forward reads only).
    partial: String,
    state: &'static str,
}

async fn task_result(app: &State, headers: &HeaderMap, id: &str) -> UiResult<TaskResult> {
    let caller = auth::check(headers, Perm::Read)?;
    if id.is_empty() {
        return Err(UiError::bad("missing task id (?id=)"));
    }
    let id = TaskId::parse(id)?;
    let req = app.store.get_request(id).await?;
    let res = app.store.get_result(id).await?;
    let (Some(req), Some(res)) = (req, res) else {
        return Err(UiError::not_found(format!("no task {}", id.summary_id())));
    };
    let sid = id.summary_id();
    caller.ctx.checker().check_task(&crate::access::request_acl(app, &sid, &req), muster_access::perms::TASKS_GET)?;
    Ok(res)
}

fn json(v: &impl Serialize) -> Response {
    match serde_json::to_vec(v) {
        Ok(b) => ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], b).into_response(),
        Err(_) => UiError::bad("unencodable reply").into_response(),
    }
}

/// `GET /task/log?id=&from=&line=[&until=][&sgr=]` (forward),
/// `?id=&before=&line=[&after=]` (backward), `?id=&goto=N&from=&line=[&until=]` (jump).
pub(crate) async fn slice(S(app): S<State>, headers: HeaderMap, Query(p): Query<SliceParams>) -> UiResult<Response> {
    let res = task_result(&app, &headers, &p.id).await?;
    let store = app.store.as_ref();
    let task = res.output_of;
    let line = p.line.unwrap_or(1).max(1);
    let mut partial = String::new();
    let s = match (p.before, p.from) {
        (Some(before), _) => backward(store, task, before, line, p.after.unwrap_or(0).min(before)).await?,
        (None, from) => {
            let (from, line, sgr) = match p.goto {
                Some(target) => {
                    let (at, l) =
                        find_line(store, task, from.unwrap_or(0), line, target.saturating_sub(CONTEXT_LINES)).await?;
                    (at, l, "")
                }
                None => (from.unwrap_or(0), line, p.sgr.as_str()),
            };
            let until = p.until.unwrap_or(u64::MAX);
            let s = forward(store, task, from, line, until, (SLICE_BYTES, SLICE_LINES), sgr).await?;
            if p.until.is_some() || p.goto.is_some() || s.lines.len() >= SLICE_LINES {
                s
            } else if is_live(res.state) {
                // Following a running task: also its unfinished last line.
                let last = unfinished(store, task, s.to, &s.sgr).await?;
                partial = lines(s.next_line(), &last).into_string();
                s
            } else if s.lines.is_empty() {
                // A finished task's last line has no newline after it.
                let last = unfinished(store, task, s.to, &s.sgr).await?;
                let to = if last.is_empty() {
                    s.to
                } else {
                    store.read_output(task, s.to, SLICE_BYTES).await?.len() as u64 + s.to
                };
                Slice { to, lines: last, ..s }
            } else {
                s
            }
        }
    };
    Ok(json(&SliceReply {
        from: s.from,
        to: s.to,
        line: s.line,
        next: s.next_line(),
        html: lines(s.line, &s.lines).into_string(),
        sgr: s.sgr,
        partial,
        state: res.state.name(),
    }))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SearchParams {
    #[serde(default)]
    id: String,
    #[serde(default)]
    q: String,
}

#[derive(Debug, Serialize)]
struct SearchReply {
    /// Numbers of the lines that contain the text (case-insensitive).
    lines: Vec<u64>,
    /// More lines matched than returned.
    truncated: bool,
}

/// `GET /task/log/search?id=&q=`: the lines whose shown text contains `q`.
pub(crate) async fn search(S(app): S<State>, headers: HeaderMap, Query(p): Query<SearchParams>) -> UiResult<Response> {
    let res = task_result(&app, &headers, &p.id).await?;
    let q = p.q.trim().to_lowercase();
    if q.is_empty() {
        return Err(UiError::bad("empty search"));
    }
    let mut hits = Vec::new();
    let mut truncated = false;
    let mut carry: Vec<u8> = Vec::new();
    let mut line = 1u64;
    let check = |bytes: &[u8], line: &mut u64, hits: &mut Vec<u64>| {
        for text in ansi::plain_lines(bytes) {
            if text.to_lowercase().contains(&q) {
                if hits.len() == MAX_MATCHES {
                    return false;
                }
                hits.push(*line);
            }
            *line += 1;
        }
        true
    };
    scan(app.store.as_ref(), res.output_of, 0, |_, b| {
        carry.extend_from_slice(b);
        let Some(i) = memchr::memrchr(b'\n', &carry) else { return true };
        let rest = carry.split_off(i + 1);
        let ok = check(&carry, &mut line, &mut hits);
        carry = rest;
        truncated = !ok;
        ok
    })
    .await?;
    if !truncated && !carry.is_empty() {
        truncated = !check(&carry, &mut line, &mut hits);
    }
    Ok(json(&SearchReply { lines: hits, truncated }))
}
