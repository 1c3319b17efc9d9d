//! Keeping the in-memory state in step with the other server replicas on
//! the same database.
//!
//! Peers announce which tasks and bots their commits touched (ids only,
//! [`Changes`]); the records are read back from the store, which stays the
//! arbiter, and absorbed: a task pending elsewhere enters the index (and
//! wakes a parked bot here), a task claimed, canceled or finished elsewhere
//! leaves it, a kill requested elsewhere reaches the running entry, and bot
//! records feed capacity, listings and liveness. [`Scheduler::resync`]
//! reconciles everything, for announcements that were missed.
//!
//! Staleness is harmless by construction: every transition re-reads the
//! store and commits by compare-and-set, so a stale pending entry costs one
//! failed claim and a stale running entry is dropped when it is acted on.
//!
//! Bot records: the one with the later `last_seen` wins (the replica the
//! bot talks to flushes it every sweep interval). A newer record also
//! extends the ping deadline of the bot's running task, so a replica never
//! declares a task dead while its bot keeps talking to another replica.

use crate::index::PendingEntry;
use crate::rebuild::running_entry;
use crate::state::{BotEntry, State, Timer};
use crate::{Result, Scheduler};
use muster_core::{BotInfo, TaskId, TaskRequest, TaskResult, TaskState, Time};
use muster_store::Changes;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What a resync found out of step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResyncReport {
    pub bots: usize,
    pub tasks: usize,
}

impl Scheduler {
    /// A bot that last talked to another replica now talks to this one:
    /// absorbs the tasks the store says it runs, so that a claim committed
    /// by a replica that died before replying is handed back (same
    /// request_uuid) or abandoned, as if it had been made here.
    pub(crate) async fn adopt_running(&self, bot_id: &str, now: Time) -> Result<()> {
        if let Some(info) = self.store.get_bot(bot_id).await? {
            self.absorb_bot(bot_id, Some(info), now);
        }
        let q = muster_store::TaskQuery {
            state: muster_core::state::StateQuery::Running,
            bot_id: Some(bot_id.to_string()),
            limit: 16,
            ..Default::default()
        };
        for r in self.store.list_results(&q).await?.items {
            self.absorb_task(r.id, Some(r), None, now).await?;
        }
        Ok(())
    }

    /// Whether `bot_id` last talked to another replica (or is unknown).
    pub(crate) fn arrived_from_elsewhere(&self, bot_id: &str) -> bool {
        self.state.lock().bots.get(bot_id).is_none_or(|e| !e.local)
    }

    /// Absorbs what another replica committed.
    pub async fn apply_changes(&self, c: &Changes, now: Time) -> Result<()> {
        if c.drains {
            self.reload_drains().await?;
        }
        if !c.bots.is_empty() {
            let mut found: HashMap<String, BotInfo> =
                self.store.get_bots(&c.bots).await?.into_iter().map(|b| (b.bot_id.clone(), b)).collect();
            for id in &c.bots {
                self.absorb_bot(id, found.remove(id), now);
            }
        }
        if c.tasks.is_empty() {
            return Ok(());
        }
        let results = self.store.get_results(&c.tasks).await?;
        // The requests of tasks newly pending here, in one read.
        let wanted: Vec<TaskId> = {
            let st = self.state.lock();
            results
                .iter()
                .flatten()
                .filter(|r| matches!(r.state, TaskState::Pending | TaskState::Running))
                .filter(|r| st.index.get(r.id).is_none() && !st.running.contains_key(&r.id))
                .map(|r| r.id)
                .collect()
        };
        let mut requests: HashMap<TaskId, Arc<TaskRequest>> = if wanted.is_empty() {
            HashMap::new()
        } else {
            self.store.get_requests(&wanted).await?.into_iter().map(|r| (r.id, Arc::new(r))).collect()
        };
        for (id, r) in c.tasks.iter().zip(results) {
            self.absorb_task(*id, r, requests.remove(id), now).await?;
        }
        Ok(())
    }

    /// Reconciles the whole in-memory state with the store.
    pub async fn resync(&self, now: Time) -> Result<ResyncReport> {
        let mut report = ResyncReport::default();
        self.reload_drains().await?;
        let bots = self.store.load_bots().await?;
        let active = self.store.load_active().await?;
        let mut stored: HashSet<String> = HashSet::with_capacity(bots.len());
        for info in bots {
            if info.deleted {
                continue;
            }
            stored.insert(info.bot_id.clone());
            let id = info.bot_id.clone();
            report.bots += self.absorb_bot(&id, Some(info), now) as usize;
        }
        {
            // Deleted elsewhere (and the announcement missed). A bot that is
            // polling here, or was heard of after the snapshot, stays.
            let mut st = self.state.lock();
            let gone: Vec<String> = st
                .bots
                .iter()
                .filter(|(id, e)| {
                    !stored.contains(*id) && !e.dirty && e.info.last_seen < now && !st.parked.contains_key(*id)
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in gone {
                st.forget_bot(&id);
                report.bots += 1;
            }
        }
        let mut seen: HashSet<TaskId> = HashSet::with_capacity(active.len());
        for (req, res) in active {
            seen.insert(res.id);
            let id = res.id;
            report.tasks += self.absorb_task(id, Some(res), Some(Arc::new(req)), now).await? as usize;
        }
        // What memory holds but the snapshot did not: re-read it fresh (it
        // may have been created here after the snapshot).
        let unseen: Vec<TaskId> = {
            let st = self.state.lock();
            st.index.ids().chain(st.running.keys().copied()).filter(|id| !seen.contains(id)).collect()
        };
        if !unseen.is_empty() {
            let results = self.store.get_results(&unseen).await?;
            for (id, r) in unseen.into_iter().zip(results) {
                report.tasks += self.absorb_task(id, r, None, now).await? as usize;
            }
        }
        Ok(report)
    }

    /// Absorbs a bot record read from the store (None: it is gone). Returns
    /// whether memory changed.
    pub(crate) fn absorb_bot(&self, bot_id: &str, info: Option<BotInfo>, now: Time) -> bool {
        let death = self.death_timeout();
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let info = match info {
            Some(i) if !i.deleted => i,
            _ => return st.forget_bot(bot_id),
        };
        let alive_until = info.last_seen + death;
        match st.bots.get_mut(bot_id) {
            Some(e) if info.last_seen < e.info.last_seen => return false,
            Some(e) => {
                if e.last_poll.as_ref().is_some_and(|(_, t)| Some(*t) != info.task_id) {
                    e.last_poll = None;
                }
                let changed = e.info != info;
                if info.last_seen > e.info.last_seen {
                    e.local = false;
                }
                e.info = info;
                e.dirty = false;
                if alive_until > e.alive_until {
                    e.alive_until = alive_until;
                }
                if !changed {
                    return false;
                }
            }
            None => {
                let entry = BotEntry { info, alive_until, dirty: false, last_poll: None, local: false };
                st.bots.insert(bot_id.to_string(), entry);
            }
        }
        let Some(e) = st.bots.get(bot_id) else { return false };
        let capable = State::capable(e, now);
        let (dims, dead, alive_until, last_seen, task) =
            (e.info.dimensions.clone(), e.info.is_dead, e.alive_until, e.info.last_seen, e.info.task_id);
        st.index.set_bot(bot_id, &dims, capable);
        if !dead {
            st.timers.insert((alive_until, Timer::Bot(bot_id.to_string())));
        }
        if let Some(run) = task.and_then(|t| st.running.get_mut(&t)).filter(|r| r.bot_id == bot_id) {
            let pinged = last_seen + chrono::Duration::seconds(run.tolerance_secs);
            if pinged > run.dead_after {
                run.dead_after = pinged;
            }
        }
        true
    }

    /// Absorbs a task result read from the store (None: evicted). `request`
    /// is read from the store when needed and not given. Returns whether
    /// memory changed.
    pub(crate) async fn absorb_task(
        &self,
        id: TaskId,
        result: Option<TaskResult>,
        request: Option<Arc<TaskRequest>>,
        now: Time,
    ) -> Result<bool> {
        let Some(r) = result else { return Ok(self.state.lock().forget_task(id, None, now)) };
        match r.state {
            TaskState::Pending => {
                let slice = r.current_slice.max(0) as usize;
                let known = {
                    let st = self.state.lock();
                    if st.running.contains_key(&id) {
                        // Claimed here after that read.
                        return Ok(false);
                    }
                    st.index.get(id).map(|e| (e.slice, e.request.clone()))
                };
                if known.as_ref().is_some_and(|(s, _)| *s == slice) {
                    return Ok(false);
                }
                let Some(request) = self.request_of(id, request.or(known.map(|(_, req)| req))).await? else {
                    return Ok(false);
                };
                if slice >= request.slices.len() {
                    return Ok(false);
                }
                self.state.lock().index.remove(id);
                self.dispatch(PendingEntry { request, slice });
                Ok(true)
            }
            TaskState::Running => {
                {
                    let mut st = self.state.lock();
                    let dropped = st.index.remove(id).is_some();
                    if let Some(run) = st.running.get_mut(&id) {
                        if run.bot_id == r.bot_id {
                            let kill = r.killing && !run.killing;
                            run.killing |= r.killing;
                            return Ok(kill || dropped);
                        }
                    }
                }
                let Some(request) = self.request_of(id, request).await? else { return Ok(false) };
                let tolerance = chrono::Duration::seconds(request.bot_ping_tolerance_secs.max(1) as i64);
                let dead_after = r.dead_after.unwrap_or(now + tolerance);
                let run = running_entry(&request, &r, dead_after);
                let mut st = self.state.lock();
                if let Some(old) = st.running.remove(&id) {
                    st.free_bot(&old.bot_id, id, now);
                }
                let busy_elsewhere =
                    st.bots.get(&r.bot_id).and_then(|b| b.info.task_id).is_some_and(|other| {
                        other != id && st.running.get(&other).is_some_and(|o| o.bot_id == r.bot_id)
                    });
                if let Some(b) = st.bots.get_mut(&r.bot_id).filter(|_| !busy_elsewhere) {
                    b.info.task_id = Some(id);
                    b.info.task_name = r.name.clone();
                    b.info.idle_since = None;
                    if !r.claim_id.is_empty() {
                        b.last_poll = Some((r.claim_id.clone(), id));
                    }
                }
                st.timers.insert((dead_after, Timer::Running(id)));
                st.running.insert(id, run);
                Ok(true)
            }
            _ => Ok(self.state.lock().forget_task(id, Some(&r.bot_id), now)),
        }
    }

    /// `given`, or the task's request read from the store (None if gone).
    async fn request_of(&self, id: TaskId, given: Option<Arc<TaskRequest>>) -> Result<Option<Arc<TaskRequest>>> {
        Ok(match given {
            Some(req) => Some(req),
            None => self.store.get_request(id).await?.map(Arc::new),
        })
    }
}
