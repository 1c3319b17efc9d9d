//! The fleet: `/botlist` (filter by dimensions and state, counts by state,
//! cursor pages) and `/bot?id=` (dimensions, state, events, tasks, and the
//! terminate/delete buttons).

use super::auth::{self, Perm};
use super::page::{ago, bot_badge, chips, esc, layout, link, opt_ts, pager, state_badge, ts};
use super::{page_limit, parse_filters, UiError, UiResult};
use crate::State;
use axum::extract::{Query, State as S};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped};
use muster_core::state::{NullableBool, StateQuery};
use muster_core::{BotInfo, Time};
use muster_sched::BotQuery;
use muster_store::{EventQuery, TaskQuery};
use serde::Deserialize;
use std::fmt::Write as _;

/// The status shown for a bot (the first that applies).
pub(crate) fn bot_status(b: &BotInfo) -> &'static str {
    if b.is_dead {
        "dead"
    } else if b.quarantined() {
        "quarantined"
    } else if b.in_maintenance() {
        "maintenance"
    } else if b.is_busy() {
        "busy"
    } else {
        "idle"
    }
}

/// The bot list's query: filters, sort, page, columns. Parsed from the raw
/// query string because the column picker sends `col=` once per column.
#[derive(Debug, Default)]
pub(crate) struct ListParams {
    /// Dimension filters, `key:value` separated by spaces.
    f: String,
    /// One of alive, idle, busy, quarantined, maintenance, dead (empty: all
    /// but the dead, unless `dead=1`).
    state: String,
    /// Show dead bots too (when no state is chosen).
    dead: bool,
    limit: Option<usize>,
    /// Id order pages by cursor; other orders by page number.
    cursor: String,
    page: usize,
    /// id, status, task, last_seen, version, or `dim:KEY`.
    sort: String,
    desc: bool,
    /// Dimension keys shown as columns.
    cols: Vec<String>,
}

impl ListParams {
    fn parse(raw: Option<&str>) -> UiResult<ListParams> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(raw.unwrap_or_default()).map_err(|e| UiError::bad(format!("bad query: {e}")))?;
        let mut p = ListParams::default();
        let mut cols_given = false;
        for (k, v) in pairs {
            match k.as_str() {
                "f" => p.f = v,
                "state" => p.state = v,
                "dead" => p.dead = v == "1",
                "limit" => p.limit = v.parse().ok(),
                "cursor" => p.cursor = v,
                "page" => p.page = v.parse().unwrap_or(0),
                "sort" => p.sort = v,
                "dir" => p.desc = v == "desc",
                "col" | "cols" => {
                    cols_given = true;
                    p.cols.extend(v.split(',').map(str::trim).filter(|c| !c.is_empty()).map(str::to_string));
                }
                _ => {}
            }
        }
        if !cols_given {
            p.cols = DEFAULT_COLUMNS.iter().map(|c| c.to_string()).collect();
        }
        p.cols.dedup();
        p.cols.truncate(MAX_COLUMNS);
        Ok(p)
    }

    /// Query pairs that keep this view (filters, columns, page size).
    fn keep(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![("f", self.f.clone()), ("state", self.state.clone())];
        if self.dead {
            q.push(("dead", "1".into()));
        }
        q.push(("cols", self.cols.join(",")));
        if let Some(l) = self.limit {
            q.push(("limit", l.to_string()));
        }
        q
    }

    fn href(&self, extra: &[(&'static str, String)]) -> String {
        let mut q = self.keep();
        q.extend(extra.iter().cloned());
        let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
        link("/botlist", &q)
    }
}

/// Dimension columns shown unless the viewer picks others.
const DEFAULT_COLUMNS: [&str; 2] = ["os", "pool"];
const MAX_COLUMNS: usize = 12;
/// Bots read from the scheduler per call while sorting.
const SORT_BATCH: usize = 1000;
/// Autocomplete answers at most this many suggestions.
const MAX_SUGGESTIONS: usize = 30;

fn state_query(p: &ListParams, q: &mut BotQuery) -> UiResult<()> {
    match p.state.as_str() {
        "" if !p.dead => q.is_dead = NullableBool::False,
        "" => {}
        "alive" => q.is_dead = NullableBool::False,
        "idle" => {
            q.is_dead = NullableBool::False;
            q.is_busy = NullableBool::False;
        }
        "busy" => q.is_busy = NullableBool::True,
        "quarantined" => q.quarantined = NullableBool::True,
        "maintenance" => q.in_maintenance = NullableBool::True,
        "dead" => q.is_dead = NullableBool::True,
        other => return Err(UiError::bad(format!("unknown bot state {other:?}"))),
    }
    Ok(())
}

/// The sort key of a bot for column `sort`.
fn sort_key(b: &BotInfo, sort: &str) -> String {
    match sort {
        "status" => bot_status(b).to_string(),
        "task" => b.task_name.clone(),
        "last_seen" => format!("{:020}", b.last_seen.timestamp_micros().saturating_add(i64::MAX / 2)),
        "version" => b.version.clone(),
        s => match s.strip_prefix("dim:") {
            Some(k) => shown_value(b.dimensions.get(k)).to_string(),
            None => b.bot_id.clone(),
        },
    }
}

/// One value for a dimension column: the most specific (longest) one,
/// so `os: Linux, Linux-Debian-12` shows as `Linux-Debian-12`.
fn shown_value(vs: &[String]) -> &str {
    vs.iter().max_by_key(|v| v.len()).map(String::as_str).unwrap_or("")
}

/// A page of bots in `p.sort` order: every matching bot's key is read from
/// the scheduler in batches (only the keys are kept), sorted, and the page's
/// bots fetched. Returns the page and whether another follows.
fn sorted_page(app: &State, q: &BotQuery, p: &ListParams, limit: usize, now: Time) -> (Vec<BotInfo>, bool) {
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut cursor = None;
    loop {
        let batch = app.sched.list_bots(&BotQuery { limit: SORT_BATCH, cursor, ..q.clone() }, now);
        keys.extend(batch.items.iter().map(|b| (sort_key(b, &p.sort), b.bot_id.clone())));
        cursor = batch.cursor;
        if cursor.is_none() {
            break;
        }
    }
    keys.sort();
    if p.desc {
        keys.reverse();
    }
    let start = p.page.saturating_mul(limit);
    let more = keys.len() > start.saturating_add(limit);
    let items = keys.iter().skip(start).take(limit).filter_map(|(_, id)| app.sched.get_bot(id, now)).collect();
    (items, more)
}

pub(crate) async fn list_page(
    S(app): S<State>,
    headers: HeaderMap,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> UiResult {
    auth::check(&headers, Perm::Read)?;
    let p = ListParams::parse(raw.as_deref())?;
    let now = app.clock.now();
    let dims = crate::access::scope_listing(
        &crate::access::current(),
        parse_filters(&p.f)?,
        muster_access::perms::POOLS_LIST_BOTS,
    )?;
    let limit = page_limit(p.limit);
    let mut q = BotQuery {
        dimensions: dims.clone(),
        limit,
        cursor: (!p.cursor.is_empty()).then(|| p.cursor.clone()),
        ..Default::default()
    };
    state_query(&p, &mut q)?;
    let by_id = (p.sort.is_empty() || p.sort == "id") && !p.desc;
    let (items, next) = if by_id {
        let page = app.sched.list_bots(&q, now);
        let next = page.cursor.map(|c| p.href(&[("cursor", c)]));
        (page.items, next)
    } else {
        let (items, more) = sorted_page(&app, &BotQuery { cursor: None, ..q.clone() }, &p, limit, now);
        let next =
            more.then(|| p.href(&[("sort", p.sort.clone()), ("dir", dir(p.desc)), ("page", (p.page + 1).to_string())]));
        (items, next)
    };
    let prev = if by_id {
        (!p.cursor.is_empty()).then(|| p.href(&[]))
    } else {
        (p.page > 0)
            .then(|| p.href(&[("sort", p.sort.clone()), ("dir", dir(p.desc)), ("page", (p.page - 1).to_string())]))
    };
    let counts = app.sched.count_bots(&dims, now);
    let keys: Vec<String> = app.sched.bot_dimensions(None).into_iter().map(|(k, _)| k).filter(|k| k != "id").collect();
    let caller = auth::caller(&headers);
    let drains = super::drains::list_section(&app.sched.list_drains(), &p.f, auth::allows(&caller, Perm::TerminateBot));

    // Idle = alive and not busy (quarantined/maintenance idle bots included).
    let alive = counts.count - counts.dead;
    let count_links = [
        ("All", "", counts.count),
        ("Alive", "alive", alive),
        ("Busy", "busy", counts.busy),
        ("Idle", "idle", alive.saturating_sub(counts.busy)),
        ("Quarantined", "quarantined", counts.quarantined),
        ("Maintenance", "maintenance", counts.maintenance),
        ("Dead", "dead", counts.dead),
    ];
    let cols = &p.cols;
    let header = |key: &str, label: &str| -> Markup {
        let current = p.sort == key || (key == "id" && p.sort.is_empty());
        let desc_next = current && !p.desc;
        let aria = if current {
            if p.desc {
                "descending"
            } else {
                "ascending"
            }
        } else {
            "none"
        };
        html! {
            th aria-sort=(aria) {
                a.sort href=(p.href(&[("sort", key.to_string()), ("dir", dir(desc_next))])) { (label) }
            }
        }
    };
    let body = html! {
        h1 { "Bots" }
        div.counts #bot-counts {
            @for (label, key, n) in count_links {
                @let all = if key.is_empty() { "all" } else { key };
                @let href = if key.is_empty() {
                    link("/botlist", &[("f", &p.f), ("dead", "1")])
                } else {
                    link("/botlist", &[("f", &p.f), ("state", key)])
                };
                a.count.current[p.state == key && (!key.is_empty() || p.dead)] data-count=(all) href=(href) {
                    span.n { (n) } " " (label)
                }
            }
        }
        (PreEscaped(drains))
        form.filters method="get" action="/botlist" {
            label { "Dimensions"
                input #filter type="text" name="f" value=(p.f) placeholder="os:Linux pool:ci" autocomplete="off"
                    data-suggest-url="/botlist/suggest" size="40";
            }
            label { "State"
                select #state name="state" {
                    @for s in ["", "alive", "idle", "busy", "quarantined", "maintenance", "dead"] {
                        option value=(s) selected[s == p.state] { (if s.is_empty() { "any" } else { s }) }
                    }
                }
            }
            label.check { input #showdead type="checkbox" name="dead" value="1" checked[p.dead]; " Show dead bots" }
            input type="hidden" name="cols" value=(cols.join(","));
            button #apply type="submit" { "Apply" }
        }
        details.columns #columns {
            summary { "Columns" }
            form method="get" action="/botlist" {
                input type="hidden" name="f" value=(p.f);
                input type="hidden" name="state" value=(p.state);
                @if p.dead { input type="hidden" name="dead" value="1"; }
                @for k in &keys {
                    label.check { input type="checkbox" name="col" value=(k) checked[cols.contains(k)]; " " (k) }
                }
                label.check { input type="checkbox" name="col" value="dims" checked[cols.iter().any(|c| c == "dims")]; " all dimensions" }
                button #setcols type="submit" { "Show columns" }
            }
        }
        div.tablewrap {
            table.list #bots {
                thead { tr {
                    (header("id", "Bot")) (header("status", "Status")) (header("task", "Current task"))
                    @for c in cols {
                        @if c == "dims" { th { "Dimensions" } } @else { (header(&format!("dim:{c}"), c)) }
                    }
                    (header("last_seen", "Last seen")) (header("version", "Version"))
                } }
                tbody {
                    @for bot in &items {
                        tr.bot data-bot=(bot.bot_id) {
                            td.nowrap { a href=(link("/bot", &[("id", &bot.bot_id)])) { (bot.bot_id) } }
                            td { (PreEscaped(bot_badge(bot_status(bot)))) }
                            td { @match bot.task_id {
                                Some(t) => a href={ "/task?id=" (t.summary_id()) } { (if bot.task_name.is_empty() { "task" } else { &bot.task_name }) },
                                None => "—",
                            } }
                            @for c in cols {
                                @if c == "dims" {
                                    td.dims { (PreEscaped(chips(&bot.dimensions.flat().into_iter().filter(|d| !d.starts_with("id:")).collect::<Vec<_>>()))) }
                                } @else {
                                    @let vs = bot.dimensions.get(c);
                                    td.nowrap title=(vs.join(", ")) data-col=(c) { (shown_value(vs)) }
                                }
                            }
                            td.nowrap title=(ts(bot.last_seen)) { (ago(bot.last_seen, now)) }
                            td.mono { (short(&bot.version)) }
                        }
                    }
                    @if items.is_empty() { tr { td.empty colspan=(5 + cols.len()) { "No bots match." } } }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if let Some(h) = &prev { a.prev href=(h) rel="prev" { "← Previous" } }
            @if let Some(h) = &next { a.next href=(h) rel="next" { "Next →" } }
        }
    };
    Ok(layout("Bots", "/botlist", &body.into_string()).into_response())
}

fn dir(desc: bool) -> String {
    if desc { "desc" } else { "asc" }.to_string()
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SuggestParams {
    #[serde(default)]
    q: String,
}

/// `GET /botlist/suggest?q=os:Lin`: up to [`MAX_SUGGESTIONS`] `key:value`
/// pairs of live dimensions starting with (else containing) `q`, so the bot
/// list page needs no list of every value.
pub(crate) async fn suggest(
    S(app): S<State>,
    headers: HeaderMap,
    Query(p): Query<SuggestParams>,
) -> UiResult<Response> {
    auth::check(&headers, Perm::Read)?;
    let q = p.q.trim().to_lowercase();
    let mut starts = Vec::new();
    let mut contains = Vec::new();
    if !q.is_empty() {
        'all: for (k, vs) in app.sched.bot_dimensions(None) {
            for v in vs {
                let s = format!("{k}:{v}");
                let low = s.to_lowercase();
                if low.starts_with(&q) {
                    starts.push(s);
                    if starts.len() >= MAX_SUGGESTIONS {
                        break 'all;
                    }
                } else if contains.len() < MAX_SUGGESTIONS && low.contains(&q) {
                    contains.push(s);
                }
            }
        }
    }
    starts.extend(contains);
    starts.truncate(MAX_SUGGESTIONS);
    Ok(axum::Json(starts).into_response())
}

fn short(v: &str) -> &str {
    v.get(..12).unwrap_or(v)
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct BotParams {
    #[serde(default)]
    id: String,
    #[serde(default)]
    events_cursor: String,
    #[serde(default)]
    tasks_cursor: String,
}

pub(crate) async fn bot_page(S(app): S<State>, headers: HeaderMap, Query(p): Query<BotParams>) -> UiResult {
    let caller = auth::check(&headers, Perm::Read)?;
    if p.id.is_empty() {
        return Err(UiError::bad("missing bot id (?id=)"));
    }
    caller.ctx.checker().check_bot(
        &p.id,
        &crate::access::bot_pools(&app, &p.id),
        muster_access::perms::POOLS_LIST_BOTS,
    )?;
    let now = app.clock.now();
    let live = app.sched.get_bot(&p.id, now);
    let bot = match live {
        Some(b) => Some(b),
        None => app.store.get_bot(&p.id).await?,
    };
    let events = app
        .store
        .list_bot_events(&EventQuery {
            bot_id: p.id.clone(),
            limit: 50,
            cursor: (!p.events_cursor.is_empty()).then(|| p.events_cursor.clone()),
            ..Default::default()
        })
        .await?;
    if bot.is_none() && events.items.is_empty() {
        return Err(UiError::not_found(format!("no bot {:?}", p.id)));
    }
    let tasks = app
        .store
        .list_results(&TaskQuery {
            state: StateQuery::All,
            bot_id: Some(p.id.clone()),
            limit: 50,
            cursor: (!p.tasks_cursor.is_empty()).then(|| p.tasks_cursor.clone()),
            ..Default::default()
        })
        .await?;

    let mut b = String::new();
    let _ = write!(b, "<h1>Bot <span class=\"mono\" id=\"bot-id\">{}</span></h1>", esc(&p.id));
    match &bot {
        None => b.push_str("<p class=\"note\">This bot was deleted; its history remains.</p>"),
        Some(bot) => {
            b.push_str("<div class=\"actions\">");
            let pools = bot.dimensions.get("pool").to_vec();
            // A dead bot cannot be asked to exit: no Terminate.
            if !bot.is_dead && auth::allows_bot(&caller, &pools, Perm::TerminateBot) {
                let _ = write!(
                    b,
                    "<form method=\"post\" action=\"/ui/bot/terminate\" data-confirm=\"Terminate bot {id}? It finishes its current task, then exits.\">\
                     <input type=\"hidden\" name=\"id\" value=\"{id}\"><button id=\"terminate\" class=\"danger\">Terminate</button></form>",
                    id = esc(&bot.bot_id)
                );
            }
            if auth::allows_bot(&caller, &pools, Perm::TerminateBot) {
                let drained = app
                    .sched
                    .list_drains()
                    .iter()
                    .any(|d| d.target == muster_core::DrainTarget::Bot(bot.bot_id.clone()));
                b.push_str(&super::drains::bot_button(&bot.bot_id, drained));
            }
            if auth::allows_bot(&caller, &pools, Perm::DeleteBot) {
                let _ = write!(
                    b,
                    "<form method=\"post\" action=\"/ui/bot/delete\" data-confirm=\"Delete bot {id}? It reappears if it connects again.\">\
                     <input type=\"hidden\" name=\"id\" value=\"{id}\"><button id=\"delete\" class=\"danger\">Delete</button></form>",
                    id = esc(&bot.bot_id)
                );
            }
            b.push_str("</div>");
            b.push_str(&bot_summary(bot, now));
        }
    }

    b.push_str("<h2>Tasks</h2><table class=\"list\" id=\"bot-tasks\"><thead><tr><th>Task</th><th>State</th><th>Created</th><th>Duration</th><th>Exit code</th></tr></thead><tbody>");
    for t in &tasks.items {
        let _ = write!(
            b,
            "<tr><td><a href=\"/task?id={id}\">{name}</a></td><td>{st}</td><td>{created}</td><td>{dur}</td><td>{exit}</td></tr>",
            id = t.id.summary_id(),
            name = esc(if t.name.is_empty() { "(unnamed)" } else { &t.name }),
            st = state_badge(t.state, t.failure),
            created = ts(t.created),
            dur = t.duration.map(super::page::dur).unwrap_or_else(|| "—".into()),
            exit = t.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "—".into()),
        );
    }
    if tasks.items.is_empty() {
        b.push_str("<tr><td colspan=\"5\" class=\"empty\">No tasks yet.</td></tr>");
    }
    b.push_str("</tbody></table>");
    b.push_str(&pager(
        "/bot",
        &[("id", &p.id), ("events_cursor", &p.events_cursor)],
        "tasks_cursor",
        tasks.cursor.as_deref(),
    ));

    b.push_str("<h2>Events</h2><table class=\"list\" id=\"events\"><thead><tr><th>Time</th><th>Event</th><th>Message</th><th>Task</th><th>Version</th></tr></thead><tbody>");
    for e in &events.items {
        let task = if e.task_id.is_empty() {
            String::new()
        } else {
            format!("<a href=\"/task?id={id}\">{id}</a>", id = esc(&e.task_id))
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td><span class=\"event\">{}</span></td><td>{}</td><td>{task}</td><td class=\"mono\">{}</td></tr>",
            ts(e.ts),
            esc(&e.event_type),
            esc(&e.message),
            esc(short(&e.version))
        );
    }
    b.push_str("</tbody></table>");
    b.push_str(&pager(
        "/bot",
        &[("id", &p.id), ("tasks_cursor", &p.tasks_cursor)],
        "events_cursor",
        events.cursor.as_deref(),
    ));
    Ok(layout(&format!("Bot {}", p.id), "/botlist", &b).into_response())
}

fn bot_summary(bot: &BotInfo, now: Time) -> String {
    let mut b = String::from("<div class=\"cols\"><section><h2>Status</h2><table class=\"kv\">");
    let task = match bot.task_id {
        Some(t) => format!("<a href=\"/task?id={}\">{}</a>", t.summary_id(), esc(&bot.task_name)),
        None => "—".into(),
    };
    let mut rows: Vec<(&str, String)> = vec![
        ("Status", bot_badge(bot_status(bot))),
        ("Current task", task),
        ("Quarantined", esc(if bot.quarantined_msg.is_empty() { "no" } else { &bot.quarantined_msg })),
        ("Maintenance", esc(if bot.maintenance_msg.is_empty() { "no" } else { &bot.maintenance_msg })),
        ("First seen", ts(bot.first_seen)),
        ("Last seen", format!("{} ({})", ts(bot.last_seen), ago(bot.last_seen, now))),
        ("Idle since", opt_ts(bot.idle_since)),
        ("Version", format!("<span class=\"mono\">{}</span>", esc(&bot.version))),
        ("External IP", esc(&bot.external_ip)),
        ("Authenticated as", esc(&bot.authenticated_as)),
        ("Session", format!("<span class=\"mono\">{}</span>", esc(&bot.session_id))),
    ];
    if bot.is_dead {
        // Not idle: gone. Say since when it has not been heard from.
        rows.retain(|(k, _)| *k != "Idle since");
        rows.insert(1, ("Dead", format!("no contact since {} ({})", ts(bot.last_seen), ago(bot.last_seen, now))));
    }
    for (k, v) in rows {
        let _ = write!(b, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    b.push_str("</table><h2>Dimensions</h2><table class=\"kv\" id=\"dimensions\">");
    for (k, vs) in &bot.dimensions.0 {
        let _ = write!(b, "<tr><th>{}</th><td>{}</td></tr>", esc(k), chips(vs));
    }
    b.push_str("</table></section><section><h2>State</h2>");
    let pretty = serde_json::from_str::<serde_json::Value>(&bot.state_json)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| bot.state_json.clone());
    let _ = write!(b, "<pre class=\"json\" id=\"state-json\">{}</pre></section></div>", esc(&pretty));
    b
}
