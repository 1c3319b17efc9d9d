//! The process-wide Prometheus recorder and the `/metrics` exposition.
//!
//! Counters and histograms are recorded where things happen (the commit,
//! the HTTP layer, the poll handler); gauges of the scheduler's state
//! (pending tasks, bots, parked polls) are computed when `/metrics` is read,
//! from one snapshot of the scheduler, so an idle server costs nothing.

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use muster_sched::FleetGauges;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, OnceLock};

/// At most this many distinct pool label values; further pools are
/// reported as `_other` (a client can invent any pool name).
pub const MAX_POOLS: usize = 1000;

/// The label of a pool: itself while fewer than [`MAX_POOLS`] pools were
/// seen, `_other` after that, `_none` when there is no pool.
pub fn pool_label(pool: Option<&str>) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let Some(p) = pool.filter(|p| !p.is_empty()) else { return "_none".to_string() };
    let mut seen = SEEN.get_or_init(Default::default).lock();
    if seen.contains(p) {
        return p.to_string();
    }
    if seen.len() < MAX_POOLS {
        seen.insert(p.to_string());
        return p.to_string();
    }
    "_other".to_string()
}

const SECONDS_FAST: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
const SECONDS_HTTP: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
const SECONDS_WAIT: &[f64] =
    &[0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0, 86400.0];
const BATCH: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

/// Label sets of the scrape-time gauges set last time (so series that
/// disappeared are set to 0 rather than frozen at their last value).
#[derive(Default)]
struct Previous {
    pending: HashSet<String>,
    bots: HashSet<(String, &'static str)>,
}

/// The recorder's handle plus the scrape-time gauge bookkeeping.
pub struct Metrics {
    handle: PrometheusHandle,
    previous: Mutex<Previous>,
}

impl Metrics {
    /// The process-wide metrics, installing the recorder on first use.
    /// Fails only if another recorder was installed by someone else.
    pub fn global() -> Result<Arc<Metrics>, String> {
        static GLOBAL: OnceLock<Result<Arc<Metrics>, String>> = OnceLock::new();
        GLOBAL.get_or_init(install).clone()
    }

    /// Sets the gauges from `fleet` and renders everything in the
    /// Prometheus text format (version 0.0.4).
    pub fn render(&self, fleet: &FleetGauges) -> String {
        self.set_fleet(fleet);
        self.handle.render()
    }

    /// Folds recorded histogram samples into their buckets; call it every
    /// few seconds so memory stays flat when nobody scrapes.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    fn set_fleet(&self, fleet: &FleetGauges) {
        let mut pending: BTreeMap<String, (usize, f64)> = BTreeMap::new();
        for p in &fleet.pending {
            let e = pending.entry(pool_label(Some(&p.pool))).or_default();
            e.0 += p.count;
            e.1 = e.1.max(p.oldest_age_secs);
        }
        let mut bots: BTreeMap<(String, &'static str), usize> = BTreeMap::new();
        for b in &fleet.bots {
            *bots.entry((pool_label(Some(&b.pool)), b.state)).or_default() += b.count;
        }
        let mut prev = self.previous.lock();
        for pool in prev.pending.iter().filter(|p| !pending.contains_key(*p)) {
            gauge!("muster_tasks_pending", "pool" => pool.clone()).set(0.0);
            gauge!("muster_tasks_pending_oldest_age_seconds", "pool" => pool.clone()).set(0.0);
        }
        for (pool, (n, age)) in &pending {
            gauge!("muster_tasks_pending", "pool" => pool.clone()).set(*n as f64);
            gauge!("muster_tasks_pending_oldest_age_seconds", "pool" => pool.clone()).set(*age);
        }
        for (pool, state) in prev.bots.iter().filter(|k| !bots.contains_key(*k)) {
            gauge!("muster_bots", "pool" => pool.clone(), "state" => *state).set(0.0);
        }
        for ((pool, state), n) in &bots {
            gauge!("muster_bots", "pool" => pool.clone(), "state" => *state).set(*n as f64);
        }
        gauge!("muster_long_polls_parked").set(fleet.parked as f64);
        prev.pending = pending.into_keys().collect();
        prev.bots = bots.into_keys().collect();
    }
}

fn install() -> Result<Arc<Metrics>, String> {
    let err = |e: metrics_exporter_prometheus::BuildError| format!("metrics: {e}");
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full("muster_task_queue_wait_seconds".into()), SECONDS_WAIT)
        .map_err(err)?
        .set_buckets_for_metric(Matcher::Full("muster_task_dispatch_latency_seconds".into()), SECONDS_FAST)
        .map_err(err)?
        .set_buckets_for_metric(Matcher::Full("muster_store_commit_seconds".into()), SECONDS_FAST)
        .map_err(err)?
        .set_buckets_for_metric(Matcher::Full("muster_store_batch_size".into()), BATCH)
        .map_err(err)?
        .set_buckets_for_metric(Matcher::Full("muster_http_request_duration_seconds".into()), SECONDS_HTTP)
        .map_err(err)?
        .install_recorder()
        .map_err(err)?;
    describe();
    // Registered now so dashboards and alerts see them at 0 from the start.
    // Incremented by a successful config reload (muster-config's
    // `ConfigHolder::reload`); the backlog is to be set by the notification
    // sender (its queue length) once notifications are delivered.
    counter!("muster_config_reloads_total").absolute(0);
    gauge!("muster_notification_backlog").set(0.0);
    gauge!("muster_long_polls_parked").set(0.0);
    Ok(Arc::new(Metrics { handle, previous: Mutex::new(Previous::default()) }))
}

fn describe() {
    describe_counter!("muster_tasks_created_total", "Tasks created, by pool of their first slice.");
    describe_counter!("muster_tasks_finished_total", "Tasks that reached a final state, by pool and state.");
    describe_gauge!("muster_tasks_pending", "Pending task slices in the scheduler's index, by pool.");
    describe_gauge!(
        "muster_tasks_pending_oldest_age_seconds",
        Unit::Seconds,
        "Age of the oldest pending task, by pool."
    );
    describe_histogram!(
        "muster_task_queue_wait_seconds",
        Unit::Seconds,
        "Time from a task's creation to its start on a bot, by pool."
    );
    describe_histogram!(
        "muster_task_dispatch_latency_seconds",
        Unit::Seconds,
        "Time from a bot's poll arriving to the committed claim of a task, by pool (excludes long-poll waiting)."
    );
    describe_gauge!("muster_bots", "Known bots by pool and state (idle, busy, quarantined, maintenance, dead).");
    describe_gauge!("muster_long_polls_parked", "Bot polls currently parked waiting for a task.");
    describe_histogram!("muster_store_commit_seconds", Unit::Seconds, "Latency of a durable store commit.");
    describe_histogram!("muster_store_batch_size", "Transactions per SQLite group commit.");
    describe_counter!("muster_http_requests_total", "HTTP requests by route template and status code.");
    describe_histogram!(
        "muster_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request duration by route template (bot polls include their long-poll wait)."
    );
    describe_counter!("muster_config_reloads_total", "Successful configuration reloads.");
    describe_gauge!("muster_notification_backlog", "Task notifications waiting to be sent.");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_labels_are_capped() {
        assert_eq!(pool_label(None), "_none");
        assert_eq!(pool_label(Some("")), "_none");
        let first = pool_label(Some("label-test-pool"));
        assert_eq!(first, "label-test-pool");
        for i in 0..MAX_POOLS + 5 {
            pool_label(Some(&format!("label-test-{i}")));
        }
        assert_eq!(pool_label(Some("label-test-pool")), "label-test-pool", "a known pool keeps its label");
        assert_eq!(pool_label(Some("label-test-never-seen")), "_other");
    }
}
