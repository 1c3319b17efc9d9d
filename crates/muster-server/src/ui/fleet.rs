//! The fleet: `/botlist` (filter by dimensions and state, counts by state,
//! cursor pages) and `/bot?id=` (dimensions, state, events, tasks, and the
//! terminate/delete buttons).

use super::auth::{self, Perm};
use super::page::{ago, bot_badge, chips, esc, layout, link, opt_ts, pager, state_badge, ts};
use super::{page_limit, parse_filters, UiError, UiResult};
use crate::State;
use axum::extract::{Query, State as S};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use muster_core::state::{NullableBool, StateQuery};
use muster_core::{BotInfo, Time};
use muster_sched::BotQuery;
use muster_store::{EventQuery, TaskQuery};
use serde::Deserialize;
use std::fmt::Write as _;

/// At most this many values per key are offered for autocompletion.
const MAX_SUGGESTED_VALUES: usize = 200;

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

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListParams {
    /// Dimension filters, `key:value` separated by spaces.
    #[serde(default)]
    f: String,
    /// One of alive, idle, busy, quarantined, maintenance, dead (empty: all).
    #[serde(default)]
    state: String,
    limit: Option<usize>,
    #[serde(default)]
    cursor: String,
}

fn state_query(state: &str, q: &mut BotQuery) -> UiResult<()> {
    match state {
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

pub(crate) async fn list_page(S(app): S<State>, headers: HeaderMap, Query(p): Query<ListParams>) -> UiResult {
    auth::check(&headers, Perm::Read)?;
    let now = app.clock.now();
    let dims = parse_filters(&p.f)?;
    let limit = page_limit(p.limit);
    let mut q = BotQuery {
        dimensions: dims.clone(),
        limit,
        cursor: (!p.cursor.is_empty()).then(|| p.cursor.clone()),
        ..Default::default()
    };
    state_query(&p.state, &mut q)?;
    let page = app.sched.list_bots(&q, now);
    let counts = app.sched.count_bots(&dims, now);
    let known = app.sched.bot_dimensions(None);

    let mut b = String::new();
    b.push_str("<h1>Bots</h1>");
    // Counts by state, each a link to the filtered list.
    // Idle = alive and not busy (quarantined/maintenance idle bots included).
    let alive = counts.count - counts.dead;
    let idle_count = alive.saturating_sub(counts.busy);
    b.push_str("<div class=\"counts\" id=\"bot-counts\">");
    for (label, key, n) in [
        ("All", "", counts.count),
        ("Alive", "alive", alive),
        ("Busy", "busy", counts.busy),
        ("Idle", "idle", idle_count),
        ("Quarantined", "quarantined", counts.quarantined),
        ("Maintenance", "maintenance", counts.maintenance),
        ("Dead", "dead", counts.dead),
    ] {
        let class = if p.state == key { " current" } else { "" };
        let _ = write!(
            b,
            "<a class=\"count{class}\" data-count=\"{key_or_all}\" href=\"{}\"><span class=\"n\">{n}</span> {label}</a>",
            esc(&link("/botlist", &[("f", &p.f), ("state", key)])),
            key_or_all = if key.is_empty() { "all" } else { key },
        );
    }
    b.push_str("</div>");

    let caller = auth::caller(&headers);
    b.push_str(&super::drains::list_section(&app.sched.list_drains(), &p.f, auth::allows(&caller, Perm::TerminateBot)));

    // Filter form; ui.js adds autocompletion from the known dimensions.
    let mut suggest: Vec<String> = Vec::new();
    for (k, vs) in &known {
        suggest.extend(vs.iter().take(MAX_SUGGESTED_VALUES).map(|v| format!("{k}:{v}")));
    }
    let _ = write!(
        b,
        "<form class=\"filters\" method=\"get\" action=\"/botlist\">\
         <label>Dimensions <input type=\"text\" name=\"f\" id=\"filter\" value=\"{f}\" \
         placeholder=\"os:Linux pool:ci\" autocomplete=\"off\" data-suggest=\"{sugg}\" size=\"50\"></label>\
         <label>State <select name=\"state\" id=\"state\">{opts}</select></label>\
         <button type=\"submit\" id=\"apply\">Apply</button></form>",
        f = esc(&p.f),
        sugg = esc(&serde_json::to_string(&suggest).unwrap_or_else(|_| "[]".into())),
        opts = ["", "alive", "idle", "busy", "quarantined", "maintenance", "dead"]
            .iter()
            .map(|s| format!(
                "<option value=\"{s}\"{sel}>{label}</option>",
                sel = if *s == p.state { " selected" } else { "" },
                label = if s.is_empty() { "any" } else { s }
            ))
            .collect::<String>(),
    );

    b.push_str(
        "<table class=\"list sortable\" id=\"bots\"><thead><tr><th>Bot</th><th>Status</th><th>Current task</th>\
         <th>Dimensions</th><th>Last seen</th><th>Version</th></tr></thead><tbody>",
    );
    for bot in &page.items {
        let task = match bot.task_id {
            Some(t) => format!(
                "<a href=\"/task?id={}\">{}</a>",
                t.summary_id(),
                esc(if bot.task_name.is_empty() { "task" } else { &bot.task_name })
            ),
            None => "—".to_string(),
        };
        let dims: Vec<String> = bot.dimensions.flat().into_iter().filter(|d| !d.starts_with("id:")).collect();
        let _ = write!(
            b,
            "<tr class=\"bot\" data-bot=\"{id}\"><td><a href=\"{href}\">{id}</a></td><td>{status}</td><td>{task}</td>\
             <td class=\"dims\">{dims}</td><td data-sort=\"{seen_key}\" title=\"{seen}\">{ago}</td><td class=\"mono\">{ver}</td></tr>",
            id = esc(&bot.bot_id),
            href = esc(&link("/bot", &[("id", &bot.bot_id)])),
            status = bot_badge(bot_status(bot)),
            dims = chips(&dims),
            seen_key = bot.last_seen.timestamp(),
            seen = ts(bot.last_seen),
            ago = ago(bot.last_seen, now),
            ver = esc(short(&bot.version)),
        );
    }
    if page.items.is_empty() {
        b.push_str("<tr><td colspan=\"6\" class=\"empty\">No bots match.</td></tr>");
    }
    b.push_str("</tbody></table>");
    let limit_s = limit.to_string();
    b.push_str(&pager(
        "/botlist",
        &[("f", &p.f), ("state", &p.state), ("limit", &limit_s)],
        "cursor",
        page.cursor.as_deref(),
    ));
    Ok(layout("Bots", "/botlist", &b).into_response())
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
