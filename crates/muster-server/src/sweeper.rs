//! The background sweep: slice expiry, BOT_DIED, dead bots, bot record flush.

use muster_core::Clock;
use muster_sched::Scheduler;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) async fn run(sched: Arc<Scheduler>, clock: Arc<dyn Clock>, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = clock.now();
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
    }
    // Flush what is only in memory (bot last_seen/state) before exiting.
    let _ = sched.sweep(clock.now()).await;
}
