//! The timer-driven background work (docs/design.md#data-flow, docs/scheduling.md#expiry-and-fallback): slice expiry (fall back
//! to the next slice with capacity, else EXPIRED), running tasks past
//! `dead_after` (BOT_DIED, or KILLED when a kill was pending), bots silent
//! past the death timeout (dead + `bot_missing`, their task abandoned) — run
//! by one replica — and, on every replica, the batched flush of bot records
//! and queue garbage collection.
//!
//! Timers live in a `BTreeSet<(deadline, what)>`: a sweep only touches due
//! items. Timers are lazy: a fired timer re-checks the current deadline.

use crate::index::PendingEntry;
use crate::state::Timer;
use crate::task_update::Abandon;
use crate::{Result, Scheduler, SweepReport};
use muster_core::{BotEvent, TaskId, TaskState, Time};
use muster_store::{CommitOutcome, Txn, Write};

/// Empty queues unused this long are dropped.
const QUEUE_IDLE_HOURS: i64 = 4;

impl Scheduler {
    /// The once-per-deployment sweep (run by the replica holding the lease):
    /// expires slices, detects BOT_DIED and dead bots, then [`flush`]es.
    ///
    /// Before a bot is declared dead or a task BOT_DIED, the bot's record is
    /// re-read from the store: it may be talking to another replica.
    ///
    /// [`flush`]: Scheduler::flush
    pub async fn sweep(&self, now: Time) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        let mut slices: Vec<PendingEntry> = Vec::new();
        let mut due_tasks: Vec<TaskId> = Vec::new();
        let mut due_bots: Vec<String> = Vec::new();
        {
            let mut guard = self.state.lock();
            let st = &mut *guard;
            while let Some((due, _)) = st.timers.first() {
                if *due > now {
                    break;
                }
                let Some((_, timer)) = st.timers.pop_first() else { break };
                match timer {
                    Timer::Slice(id) => {
                        if st.index.get(id).is_some_and(|e| e.deadline() <= now) {
                            if let Some(e) = st.index.remove(id) {
                                slices.push(e);
                            }
                        } else if let Some(e) = st.index.get(id) {
                            // The entry moved to a later slice: re-arm.
                            st.timers.insert((e.deadline(), Timer::Slice(id)));
                        }
                    }
                    Timer::Running(id) => due_tasks.push(id),
                    Timer::Bot(bot_id) => due_bots.push(bot_id),
                }
            }
        }
        // Candidates' bots may be alive on another replica: refresh them.
        let mut refresh: Vec<String> = {
            let st = self.state.lock();
            let of_tasks = due_tasks.iter().filter_map(|t| st.running.get(t).map(|r| r.bot_id.clone()));
            due_bots.iter().cloned().chain(of_tasks).collect()
        };
        refresh.sort_unstable();
        refresh.dedup();
        if !refresh.is_empty() {
            for info in self.store.get_bots(&refresh).await? {
                let id = info.bot_id.clone();
                self.absorb_bot(&id, Some(info), now);
            }
        }
        let mut tasks: Vec<(TaskId, String)> = Vec::new();
        let mut dead_bots: Vec<(muster_core::BotInfo, Option<TaskId>)> = Vec::new();
        {
            let mut guard = self.state.lock();
            let st = &mut *guard;
            for id in due_tasks {
                if let Some(r) = st.running.get(&id) {
                    if r.dead_after <= now {
                        tasks.push((id, r.bot_id.clone()));
                    } else {
                        st.timers.insert((r.dead_after, Timer::Running(id)));
                    }
                }
            }
            for bot_id in due_bots {
                if let Some(e) = st.bots.get_mut(&bot_id) {
                    if e.info.is_dead {
                        continue;
                    }
                    if e.alive_until <= now {
                        e.info.is_dead = true;
                        e.dirty = false;
                        dead_bots.push((e.info.clone(), e.info.task_id));
                        st.index.set_capable(&bot_id, false);
                    } else {
                        st.timers.insert((e.alive_until, Timer::Bot(bot_id)));
                    }
                }
            }
        }
        for e in slices {
            if self.expire_slice(e, now).await? {
                report.slices_expired += 1;
            }
        }
        for (task, bot_id) in tasks {
            if self.abandon(task, &bot_id, Abandon::BotDied, "ping timeout", now).await? {
                report.tasks_bot_died += 1;
            }
        }
        for (info, task) in dead_bots {
            let ev = BotEvent::of(&info, now, "bot_missing", "");
            self.store
                .commit(Txn::new().with(Write::PutBot(Box::new(info.clone()))).with(Write::AppendEvent(Box::new(ev))))
                .await?;
            report.bots_dead += 1;
            if let Some(task) = task {
                if self.abandon(task, &info.bot_id, Abandon::BotDied, "bot missing", now).await? {
                    report.tasks_bot_died += 1;
                }
            }
        }
        self.flush(now).await?;
        Ok(report)
    }

    /// What every replica does each sweep interval: writes the bot records
    /// changed only in memory (last contact, state) in one quiet Txn, and
    /// drops idle empty queues.
    pub async fn flush(&self, now: Time) -> Result<()> {
        let flush: Vec<muster_core::BotInfo> = {
            let mut guard = self.state.lock();
            let st = &mut *guard;
            st.index.gc_queues(now - chrono::Duration::hours(QUEUE_IDLE_HOURS));
            st.bots
                .values_mut()
                .filter(|e| e.dirty)
                .map(|e| {
                    e.dirty = false;
                    e.info.clone()
                })
                .collect()
        };
        if !flush.is_empty() {
            let mut txn = Txn::new().quiet();
            for b in flush {
                txn.push(Write::PutBot(Box::new(b)));
            }
            self.store.commit(txn).await?;
        }
        Ok(())
    }

    /// The active slice of `entry` (already out of the index) is past its
    /// deadline: move to the next slice that still has time and capacity
    /// (re-dispatched at once), else EXPIRED. Returns whether it committed.
    pub(crate) async fn expire_slice(&self, entry: PendingEntry, now: Time) -> Result<bool> {
        let id = entry.id();
        for _ in 0..16 {
            let Some(current) = self.store.get_result(id).await? else { return Ok(false) };
            if current.state != TaskState::Pending || current.current_slice != entry.slice as i32 {
                return Ok(false);
            }
            let next_slice = {
                let mut st = self.state.lock();
                let req = &entry.request;
                (entry.slice + 1..req.slices.len()).find(|&j| {
                    req.slice_deadline(j) > now
                        && (req.slices[j].wait_for_capacity
                            || st.index.has_capacity(&req.slices[j].properties.dimensions))
                })
            };
            let mut next = current.clone();
            match next_slice {
                Some(j) => next.current_slice = j as i32,
                None => {
                    next.state = TaskState::Expired;
                    next.abandoned = Some(now);
                    next.completed = Some(now);
                }
            }
            self.stamp(&mut next, now);
            match self.store.commit(Txn::new().with(Write::UpdateResult(Box::new(next)))).await {
                Ok(CommitOutcome::Committed) => {
                    if let Some(j) = next_slice {
                        self.dispatch(PendingEntry { request: entry.request.clone(), slice: j });
                    }
                    return Ok(true);
                }
                Ok(CommitOutcome::Conflict { .. }) => continue,
                Err(e) => {
                    // Keep it schedulable; the timer retries the expiry.
                    self.dispatch(entry);
                    return Err(e.into());
                }
            }
        }
        Ok(false)
    }
}
