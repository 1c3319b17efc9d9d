//! Startup: rebuild the in-memory state from the store (docs/scheduling.md#restart). Bots get a full death-timeout of grace and running tasks a full
//! ping tolerance, so a restart never kills the fleet.

use crate::index::PendingEntry;
use crate::state::{BotEntry, RunningEntry, State, Timer};
use crate::{Result, SchedConfig, Scheduler};
use muster_core::{TaskRequest, TaskResult, TaskState, Time};
use muster_store::Store;
use std::sync::Arc;

/// The dedup hash a successful run of `slice` will publish, if idempotent.
pub(crate) fn dedup_hash_of(req: &TaskRequest, slice: usize) -> Option<String> {
    let s = req.slices.get(slice)?;
    s.properties.idempotent.then(|| s.properties.properties_hash())
}

pub(crate) fn running_entry(req: &TaskRequest, res: &TaskResult, dead_after: Time) -> RunningEntry {
    RunningEntry {
        bot_id: res.bot_id.clone(),
        dead_after,
        tolerance_secs: req.bot_ping_tolerance_secs.max(1) as i64,
        killing: res.killing,
        cost_usd: res.cost_usd,
        dedup_hash: dedup_hash_of(req, res.current_slice.max(0) as usize),
        acked: true,
    }
}

impl Scheduler {
    /// Rebuilds the in-memory index from the store.
    ///
    /// Running tasks found after a restart are treated as acknowledged by
    /// their bot (a poll from that bot with a new request_uuid abandons the
    /// task instead of re-sending its manifest), except that a poll repeating
    /// the task's `claim_id` gets the task again.
    pub async fn start(store: Arc<dyn Store>, cfg: SchedConfig, now: Time) -> Result<Arc<Scheduler>> {
        let bots = store.load_bots().await?;
        let active = store.load_active().await?;
        let sched = Scheduler { store, cfg, state: parking_lot::Mutex::new(State::default()) };
        let death = sched.death_timeout();
        {
            let mut guard = sched.state.lock();
            let st = &mut *guard;
            for mut info in bots {
                if info.deleted {
                    continue;
                }
                // Which task a bot runs is rebuilt from the tasks below; a
                // record that said otherwise is rewritten at the next flush.
                let stored_task = info.task_id.take();
                info.task_name.clear();
                let alive_until =
                    if info.is_dead { info.last_seen + death } else { (info.last_seen + death).max(now + death) };
                let entry = BotEntry { info, alive_until, dirty: stored_task.is_some(), last_poll: None, local: true };
                let capable = State::capable(&entry, now);
                st.index.set_bot(&entry.info.bot_id, &entry.info.dimensions, capable);
                if !entry.info.is_dead {
                    st.timers.insert((alive_until, Timer::Bot(entry.info.bot_id.clone())));
                }
                st.bots.insert(entry.info.bot_id.clone(), entry);
            }
            for (req, res) in active {
                match res.state {
                    TaskState::Pending => {
                        let slice = res.current_slice.max(0) as usize;
                        if slice >= req.slices.len() {
                            continue;
                        }
                        let entry = PendingEntry { request: Arc::new(req), slice };
                        let deadline = entry.deadline();
                        let id = entry.id();
                        if st.index.insert(entry).is_some() {
                            st.timers.insert((deadline, Timer::Slice(id)));
                        }
                    }
                    TaskState::Running => {
                        let tolerance = chrono::Duration::seconds(req.bot_ping_tolerance_secs.max(1) as i64);
                        let dead_after = res.dead_after.map_or(now + tolerance, |d| d.max(now + tolerance));
                        let run = running_entry(&req, &res, dead_after);
                        if let Some(b) = st.bots.get_mut(&res.bot_id) {
                            b.dirty = false;
                            b.info.task_id = Some(res.id);
                            b.info.task_name = res.name.clone();
                            b.info.idle_since = None;
                            if !res.claim_id.is_empty() {
                                b.last_poll = Some((res.claim_id.clone(), res.id));
                            }
                        }
                        st.timers.insert((dead_after, Timer::Running(res.id)));
                        st.running.insert(res.id, run);
                    }
                    _ => {}
                }
            }
        }
        sched.reload_drains().await?;
        Ok(Arc::new(sched))
    }
}
