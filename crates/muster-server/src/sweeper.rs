//! The background sweep. Every sweep interval each server flushes the bot
//! records it changed in memory; the one server holding the store's lease
//! (always this one on SQLite, one replica on PostgreSQL) also runs the
//! deployment-wide work: slice expiry, BOT_DIED, dead bots, and retention.

use muster_core::{Clock, Time};
use muster_sched::Scheduler;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Rows of each kind deleted per eviction call.
const EVICT_BATCH: usize = 1000;
/// Eviction calls per round at most (the rest waits for the next round).
const EVICT_ROUNDS: usize = 100;
/// How often retention runs.
const EVICT_EVERY: chrono::Duration = chrono::Duration::minutes(1);

pub(crate) struct Settings {
    pub every: Duration,
    pub retention: Option<Duration>,
}

pub(crate) async fn run(sched: Arc<Scheduler>, clock: Arc<dyn Clock>, s: Settings, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(s.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leading = false;
    let mut next_evict: Option<Time> = None;
    let mut next_session_purge: Option<Time> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = clock.now();
        let lead = match sched.store().lead().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "could not check the sweep lease; only flushing");
                false
            }
        };
        if lead != leading {
            if lead {
                tracing::info!("this server now runs the deployment-wide sweeps");
            } else {
                tracing::warn!("this server no longer runs the deployment-wide sweeps");
            }
            leading = lead;
        }
        if !lead {
            if let Err(e) = sched.flush(now).await {
                tracing::warn!(error = %e, "flushing bot records failed");
            }
            metrics::counter!("muster_sweeps_total", "lease" => "not_held").increment(1);
            continue;
        }
        match sched.sweep(now).await {
            Ok(r) if r != Default::default() => tracing::info!(
                expired = r.slices_expired,
                bot_died = r.tasks_bot_died,
                dead_bots = r.bots_dead,
                "sweep"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sweep failed"),
        }
        if next_session_purge.is_none_or(|t| now >= t) {
            next_session_purge = Some(now + EVICT_EVERY);
            let purge = muster_store::Txn::new().with(muster_store::Write::PurgeUiSessions { before: now });
            if let Err(e) = sched.store().commit(purge).await {
                tracing::warn!(error = %e, "forgetting expired sign-in sessions failed");
            }
        }
        if let Some(keep) = s.retention.and_then(|r| chrono::Duration::from_std(r).ok()) {
            if next_evict.is_none_or(|t| now >= t) {
                next_evict = Some(now + EVICT_EVERY);
                evict(&sched, now - keep).await;
            }
        }
        metrics::counter!("muster_sweeps_total", "lease" => "held").increment(1);
    }
    // Write what is only in memory (bot last contact and state) before exiting.
    if let Err(e) = sched.flush(clock.now()).await {
        tracing::warn!(error = %e, "final flush of bot records failed");
    }
}

/// Deletes what is older than `before`, in batches.
async fn evict(sched: &Scheduler, before: Time) {
    let mut total = 0u64;
    for _ in 0..EVICT_ROUNDS {
        match sched.store().evict(before, EVICT_BATCH).await {
            Ok(n) => {
                total += n;
                if n < EVICT_BATCH as u64 {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "retention: eviction failed");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(rows = total, before = %before, "retention: deleted old tasks and bot events");
    }
}
