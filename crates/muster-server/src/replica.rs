//! Following the other replicas on a shared database: absorbs the changes
//! they announce (batched: everything queued is applied at once) and
//! reconciles in full every resync interval, when announcements were
//! missed, or after a failed absorb.

use muster_core::Clock;
use muster_sched::Scheduler;
use muster_store::{Changes, Feed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

/// Runs until `shutdown`: absorbs what `feed` announces into `sched`, resyncs in
/// full every `every`, on [`Feed::Missed`] and after an absorb fails. Public so
/// the scheduler's replica tests drive this very loop.
pub async fn follow(
    sched: Arc<Scheduler>,
    clock: Arc<dyn Clock>,
    mut feed: UnboundedReceiver<Feed>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut open = true;
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => None,
            f = feed.recv(), if open => match f {
                Some(f) => Some(f),
                None => {
                    open = false;
                    tracing::warn!("the change feed ended; relying on the periodic resync");
                    continue;
                }
            },
        };
        let mut resync = first.is_none();
        let mut changes = Changes::default();
        let mut take = |f: Feed| match f {
            Feed::Missed => resync = true,
            Feed::Changed(c) => {
                changes.tasks.extend(c.tasks);
                changes.bots.extend(c.bots);
                changes.drains |= c.drains;
            }
        };
        if let Some(f) = first {
            take(f);
            while let Ok(f) = feed.try_recv() {
                take(f);
            }
        }
        let now = clock.now();
        if !resync {
            changes.tasks.sort_unstable();
            changes.tasks.dedup();
            changes.bots.sort_unstable();
            changes.bots.dedup();
            match sched.apply_changes(&changes, now).await {
                Ok(()) => continue,
                Err(e) => tracing::warn!(error = %e, "absorbing a peer's changes failed; resyncing"),
            }
        }
        match sched.resync(now).await {
            Ok(r) if r != Default::default() => {
                tracing::info!(bots = r.bots, tasks = r.tasks, "resync brought changes the announcements missed")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "resync failed; retrying at the next interval"),
        }
    }
}
