//! `/`: the dashboard. Pending/running counts per pool and per dimension
//! set, bots busy vs idle, tasks per minute and pending-time percentiles
//! over the last hour (inline SVG).
//!
//! Cost is bounded regardless of fleet size: per-pool numbers are one
//! scheduler count and two store counts per pool (at most [`MAX_POOLS`]);
//! per-dimension-set numbers come from the newest [`SAMPLE`] pending and
//! running tasks (their dimension tags); percentiles from at most
//! [`SAMPLE`] tasks started in the last hour.

use super::auth::{self, Perm};
use super::chart;
use super::page::{dur, esc, layout, link};
use super::UiResult;
use crate::State;
use axum::extract::State as S;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use muster_core::state::{SortQuery, StateQuery};
use muster_core::time::{add_secs, secs_between};
use muster_core::DimFilter;
use muster_store::TaskQuery;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

const MAX_POOLS: usize = 50;
const SAMPLE: usize = 1000;
/// The last hour in 12 buckets of 5 minutes.
const BUCKETS: i64 = 12;
const BUCKET_SECS: i64 = 300;

/// The `p`-th percentile (0..=100) of sorted values.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted.get(rank.min(sorted.len() - 1)).copied()
}

pub(crate) async fn page(S(app): S<State>, headers: HeaderMap) -> UiResult {
    auth::check(&headers, Perm::Read)?;
    let now = app.clock.now();
    let known = app.sched.bot_dimensions(None);
    let dim_keys: BTreeSet<String> = known.iter().map(|(k, _)| k.clone()).filter(|k| k != "id").collect();
    let mut pools: BTreeSet<String> =
        known.iter().find(|(k, _)| k == "pool").map(|(_, v)| v.iter().cloned().collect()).unwrap_or_default();

    // Newest pending and running tasks, grouped by their dimension tags.
    let mut by_dims: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (state, running) in [(StateQuery::Pending, false), (StateQuery::Running, true)] {
        let page = app.store.list_results(&TaskQuery { state, limit: SAMPLE, ..Default::default() }).await?;
        for r in page.items {
            let set: Vec<&str> = r
                .tags
                .iter()
                .filter(|t| t.split_once(':').is_some_and(|(k, _)| dim_keys.contains(k) || k == "pool"))
                .map(String::as_str)
                .collect();
            for t in &set {
                if let Some(p) = t.strip_prefix("pool:") {
                    pools.insert(p.to_string());
                }
            }
            let e = by_dims.entry(set.join(" ")).or_default();
            if running {
                e.1 += 1;
            } else {
                e.0 += 1;
            }
        }
    }

    let all = app.sched.count_bots(&[], now);
    let alive = all.count - all.dead;
    let mut b = format!(
        "<h1>Dashboard <span class=\"hint\">as of {}</span></h1><div class=\"counts\" id=\"fleet-counts\">",
        now.format("%H:%M:%S UTC")
    );
    for (label, n, state) in [
        ("Bots", all.count, ""),
        ("Busy", all.busy, "busy"),
        ("Idle", alive.saturating_sub(all.busy), "idle"),
        ("Quarantined", all.quarantined, "quarantined"),
        ("Maintenance", all.maintenance, "maintenance"),
        ("Dead", all.dead, "dead"),
    ] {
        let _ = write!(
            b,
            "<a class=\"count\" data-count=\"{key}\" href=\"{href}\"><span class=\"n\">{n}</span> {label}</a>",
            key = if state.is_empty() { "bots" } else { state },
            href = esc(&link("/botlist", &[("state", state)])),
        );
    }
    b.push_str("</div>");

    // Charts: tasks per minute and pending time over the last hour.
    let hour_ago = add_secs(now, -BUCKETS * BUCKET_SECS);
    let labels: Vec<String> =
        (0..BUCKETS).map(|i| add_secs(hour_ago, i * BUCKET_SECS).format("%H:%M").to_string()).collect();
    let mut per_min = Vec::new();
    for i in 0..BUCKETS {
        let start = add_secs(hour_ago, i * BUCKET_SECS);
        let end = add_secs(start, BUCKET_SECS);
        let n = app
            .store
            .count_results(&TaskQuery {
                state: StateQuery::All,
                start: Some(start),
                end: Some(end),
                ..Default::default()
            })
            .await?;
        per_min.push((labels[i as usize].clone(), n as f64 / (BUCKET_SECS as f64 / 60.0)));
    }
    let started = app
        .store
        .list_results(&TaskQuery {
            state: StateQuery::All,
            sort: SortQuery::StartedTs,
            start: Some(hour_ago),
            limit: SAMPLE,
            ..Default::default()
        })
        .await?;
    let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); BUCKETS as usize];
    let mut waits: Vec<f64> = Vec::new();
    for r in &started.items {
        let Some(s) = r.started else { continue };
        let wait = secs_between(r.created, s);
        waits.push(wait);
        let i = ((s - hour_ago).num_seconds() / BUCKET_SECS).clamp(0, BUCKETS - 1) as usize;
        buckets[i].push(wait);
    }
    waits.sort_by(f64::total_cmp);
    for bk in &mut buckets {
        bk.sort_by(f64::total_cmp);
    }
    let p50: Vec<Option<f64>> = buckets.iter().map(|v| percentile(v, 50.0)).collect();
    let p95: Vec<Option<f64>> = buckets.iter().map(|v| percentile(v, 95.0)).collect();
    let fmt_p = |p: f64| percentile(&waits, p).map(dur).unwrap_or_else(|| "—".into());
    let _ = write!(
        b,
        "<div class=\"cols charts\"><section><h2>Tasks per minute (last hour)</h2>{bars}</section>\
         <section><h2>Pending time (last hour)</h2>{lines}\
         <p class=\"pct\" id=\"pending-percentiles\">p50 {p50} · p90 {p90} · p99 {p99} <span class=\"hint\">over {n} tasks started{sampled}</span></p></section></div>",
        bars = chart::bars("tasks-per-minute", "Tasks created per minute", &per_min),
        lines = chart::lines("pending-time", "Pending time (s)", &labels, &[("p50", p50), ("p95", p95)]),
        p50 = fmt_p(50.0),
        p90 = fmt_p(90.0),
        p99 = fmt_p(99.0),
        n = waits.len(),
        sampled = if started.cursor.is_some() { format!(", newest {SAMPLE}") } else { String::new() },
    );

    // Per pool.
    b.push_str(
        "<h2>Pools</h2><table class=\"list\" id=\"pools\"><thead><tr><th>Pool</th><th>Pending</th><th>Running</th>\
         <th>Bots</th><th>Busy</th><th>Idle</th><th>Dead</th></tr></thead><tbody>",
    );
    for pool in pools.iter().take(MAX_POOLS) {
        let f = vec![DimFilter::new("pool", pool)];
        let c = app.sched.count_bots(&f, now);
        let pending = app
            .store
            .count_results(&TaskQuery { state: StateQuery::Pending, tags: f.clone(), ..Default::default() })
            .await?;
        let running = app
            .store
            .count_results(&TaskQuery { state: StateQuery::Running, tags: f.clone(), ..Default::default() })
            .await?;
        let tag = format!("pool:{pool}");
        let _ = write!(
            b,
            "<tr data-pool=\"{p}\"><td>{p}</td><td><a href=\"{pl}\">{pending}</a></td><td><a href=\"{rl}\">{running}</a></td>\
             <td><a href=\"{bl}\">{bots}</a></td><td>{busy}</td><td>{idle}</td><td>{dead}</td></tr>",
            p = esc(pool),
            pl = esc(&link("/tasklist", &[("state", "pending"), ("tags", &tag)])),
            rl = esc(&link("/tasklist", &[("state", "running"), ("tags", &tag)])),
            bl = esc(&link("/botlist", &[("f", &tag)])),
            bots = c.count,
            busy = c.busy,
            idle = (c.count - c.dead).saturating_sub(c.busy),
            dead = c.dead,
        );
    }
    if pools.is_empty() {
        b.push_str("<tr><td colspan=\"7\" class=\"empty\">No pools yet: start a bot.</td></tr>");
    }
    b.push_str("</tbody></table>");

    // Per dimension set.
    b.push_str(
        "<h2>Dimension sets</h2><p class=\"hint\">From the newest pending and running tasks' dimension tags.</p>\
         <table class=\"list\" id=\"dimsets\"><thead><tr><th>Dimensions</th><th>Pending</th><th>Running</th></tr></thead><tbody>",
    );
    let mut sets: Vec<(&String, &(u64, u64))> = by_dims.iter().collect();
    sets.sort_by(|a, b| (b.1 .0 + b.1 .1).cmp(&(a.1 .0 + a.1 .1)).then(a.0.cmp(b.0)));
    for (set, (pending, running)) in sets.iter().take(100) {
        let _ = write!(
            b,
            "<tr><td><a href=\"{}\">{}</a></td><td>{pending}</td><td>{running}</td></tr>",
            esc(&link("/tasklist", &[("state", "pending_running"), ("tags", set)])),
            super::page::chips(&set.split(' ').map(str::to_string).collect::<Vec<_>>()),
        );
    }
    if sets.is_empty() {
        b.push_str("<tr><td colspan=\"3\" class=\"empty\">Nothing pending or running.</td></tr>");
    }
    b.push_str("</tbody></table>");
    Ok(layout("Dashboard", "/", &b).into_response())
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(51.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
