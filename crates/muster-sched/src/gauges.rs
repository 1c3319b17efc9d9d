//! A snapshot of the scheduler's state for `/metrics`: pending slices and
//! bots per pool, parked polls. One pass over memory under the lock; label
//! bounding is the caller's (muster-observe).

use crate::Scheduler;
use muster_core::Time;
use std::collections::BTreeMap;

/// Pending slices of one pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingGauge {
    pub pool: String,
    pub count: usize,
    pub oldest_age_secs: f64,
}

/// Bots of one pool in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotGauge {
    pub pool: String,
    /// idle, busy, quarantined, maintenance or dead (the first that applies,
    /// in the order dead, quarantined, maintenance, busy, idle).
    pub state: &'static str,
    pub count: usize,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetGauges {
    pub pending: Vec<PendingGauge>,
    pub bots: Vec<BotGauge>,
    pub parked: usize,
}

impl Scheduler {
    /// Pending slices (by the `pool` of their dimensions, `""` if none) and
    /// bots (by their first `pool` value) with their states, at `now`.
    pub fn fleet_gauges(&self, now: Time) -> FleetGauges {
        let st = self.state.lock();
        let mut pending: BTreeMap<&str, (usize, Time)> = BTreeMap::new();
        for e in st.index.entries() {
            let p = pending.entry(e.dims().pool().unwrap_or("")).or_insert((0, e.request.created));
            p.0 += 1;
            p.1 = p.1.min(e.request.created);
        }
        let mut bots: BTreeMap<(&str, &'static str), usize> = BTreeMap::new();
        for e in st.bots.values() {
            let i = &e.info;
            let state = if i.is_dead || now >= e.alive_until {
                "dead"
            } else if i.quarantined() {
                "quarantined"
            } else if i.in_maintenance() || st.drain_of(i).is_some() {
                "maintenance"
            } else if i.task_id.is_some() {
                "busy"
            } else {
                "idle"
            };
            *bots.entry((i.dimensions.first("pool").unwrap_or(""), state)).or_default() += 1;
        }
        FleetGauges {
            pending: pending
                .into_iter()
                .map(|(pool, (count, oldest))| PendingGauge {
                    pool: pool.to_string(),
                    count,
                    oldest_age_secs: ((now - oldest).num_milliseconds().max(0) as f64) / 1000.0,
                })
                .collect(),
            bots: bots
                .into_iter()
                .map(|((pool, state), count)| BotGauge { pool: pool.to_string(), state, count })
                .collect(),
            parked: st.parked.len(),
        }
    }
}
