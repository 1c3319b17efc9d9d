//! The scheduler's in-memory state behind its one lock, and the small
//! helpers every op shares: the bot table, running tasks, parked long-polls,
//! the timer set, and `dispatch` (hand a pending slice to a parked bot or put
//! it in the index — never both, never while holding the lock when sending).

use crate::index::{Index, PendingEntry};
use crate::{BotHello, Scheduler};
use muster_core::{BotInfo, TaskId, TaskResult, Time};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tokio::sync::oneshot;

/// A pending slice offered to a parked poll.
#[derive(Debug)]
pub(crate) struct Offer(pub PendingEntry);

/// A parked long-poll.
#[derive(Debug)]
pub(crate) struct Waiter {
    pub generation: u64,
    pub tx: oneshot::Sender<Offer>,
}

/// Something due at a point in time. Timers are lazy: when one fires, the
/// current value is re-checked and the timer re-armed if it moved.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// The active slice of a pending task may have expired.
    Slice(TaskId),
    /// A running task may be past its `dead_after`.
    Running(TaskId),
    /// A bot may be silent past the death timeout.
    Bot(String),
}

/// One known bot.
#[derive(Debug, Clone)]
pub(crate) struct BotEntry {
    pub info: BotInfo,
    /// Dead when `now >= alive_until` (last contact + death timeout, or the
    /// restart grace).
    pub alive_until: Time,
    /// Changed since the last flush to the store.
    pub dirty: bool,
    /// The last poll that got an assignment: `(request_uuid, task)`.
    pub last_poll: Option<(String, TaskId)>,
    /// What memory knows of the bot came from the bot itself (or the start-up
    /// rebuild), not from another replica's record: false when the bot last
    /// talked to another replica, whose assignment to it this replica may
    /// not have absorbed yet.
    pub local: bool,
}

/// One RUNNING task this process knows about.
#[derive(Debug, Clone)]
pub(crate) struct RunningEntry {
    pub bot_id: String,
    pub dead_after: Time,
    pub tolerance_secs: i64,
    pub killing: bool,
    pub cost_usd: f64,
    /// Properties hash to store on a successful idempotent completion.
    pub dedup_hash: Option<String>,
    /// The bot sent at least one task_update for it.
    pub acked: bool,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub index: Index,
    pub bots: BTreeMap<String, BotEntry>,
    pub parked: HashMap<String, Waiter>,
    pub next_generation: u64,
    pub running: HashMap<TaskId, RunningEntry>,
    pub timers: BTreeSet<(Time, Timer)>,
    /// The server is shutting down: polls are answered at once, never parked.
    pub closing: bool,
    /// Operator drains by target key (see `drain.rs`).
    pub drains: BTreeMap<String, muster_core::Drain>,
    /// Recent dispatches `(when, queue)`, oldest first (see `why.rs`).
    pub dispatches: std::collections::VecDeque<(Time, crate::index::QueueId)>,
}

impl State {
    /// Whether a bot counts for capacity (alive and not quarantined).
    pub fn capable(e: &BotEntry, now: Time) -> bool {
        !e.info.is_dead && now < e.alive_until && !e.info.quarantined()
    }

    /// Updates (or creates) a bot from what it said about itself. Returns
    /// whether it was unknown.
    pub fn apply_hello(&mut self, hello: &BotHello, now: Time, death_timeout: chrono::Duration) -> bool {
        let created = !self.bots.contains_key(&hello.bot_id);
        let entry = self.bots.entry(hello.bot_id.clone()).or_insert_with(|| BotEntry {
            info: BotInfo::new(&hello.bot_id, now),
            alive_until: now + death_timeout,
            dirty: true,
            last_poll: None,
            local: true,
        });
        let was_dead = entry.info.is_dead || now >= entry.alive_until;
        let i = &mut entry.info;
        i.dimensions = hello.dimensions.clone();
        if !hello.state_json.is_empty() {
            i.state_json = hello.state_json.clone();
        }
        // A bot that does not self-update reports no version: keep the one it had.
        if !hello.version.is_empty() {
            i.version = hello.version.clone();
        }
        if !hello.session_id.is_empty() {
            i.session_id = hello.session_id.clone();
        }
        i.external_ip = hello.external_ip.clone();
        i.authenticated_as = hello.authenticated_as.clone();
        i.quarantined_msg = hello.quarantined_msg.clone();
        i.maintenance_msg = hello.maintenance_msg.clone();
        i.last_seen = now;
        i.is_dead = false;
        i.deleted = false;
        entry.alive_until = now + death_timeout;
        entry.dirty = true;
        entry.local = true;
        let capable = State::capable(entry, now);
        let dims = entry.info.dimensions.clone();
        self.index.set_bot(&hello.bot_id, &dims, capable);
        if created || was_dead {
            self.timers.insert((now + death_timeout, Timer::Bot(hello.bot_id.clone())));
        }
        created
    }

    /// Whether a running task reported (or was claimed) within
    /// [`crate::LIVE_TASK_WINDOW`]: some process is still running it.
    pub fn task_live(&self, task: TaskId, now: Time) -> bool {
        self.running.get(&task).is_some_and(|r| {
            let last_heard = r.dead_after - chrono::Duration::seconds(r.tolerance_secs);
            last_heard + crate::LIVE_TASK_WINDOW > now
        })
    }

    /// Marks a bot as seen (task_update is a liveness signal too).
    pub fn touch_bot(&mut self, bot_id: &str, now: Time, death_timeout: chrono::Duration) {
        if let Some(e) = self.bots.get_mut(bot_id) {
            let was_dead = e.info.is_dead || now >= e.alive_until;
            e.info.last_seen = now;
            e.info.is_dead = false;
            e.alive_until = now + death_timeout;
            e.dirty = true;
            e.local = true;
            let capable = State::capable(e, now);
            self.index.set_capable(bot_id, capable);
            if was_dead {
                self.timers.insert((now + death_timeout, Timer::Bot(bot_id.to_string())));
            }
        }
    }

    /// Forgets a bot (deleted); a parked poll of it answers sleep. Returns
    /// whether it was known.
    pub fn forget_bot(&mut self, bot_id: &str) -> bool {
        let known = self.bots.remove(bot_id).is_some();
        if known {
            self.index.remove_bot(bot_id);
            self.parked.remove(bot_id);
        }
        known
    }

    /// Forgets a task that ended (or was deleted) elsewhere: out of the
    /// index and the running set, its bot (the running entry's, else
    /// `bot_id`) freed. Returns whether memory changed.
    pub fn forget_task(&mut self, task: TaskId, bot_id: Option<&str>, now: Time) -> bool {
        let pending = self.index.remove(task).is_some();
        let run = self.running.remove(&task);
        let bot = run.as_ref().map(|r| r.bot_id.as_str()).or(bot_id).map(str::to_string);
        let freed = bot.is_some_and(|b| self.free_bot(&b, task, now).is_some());
        pending || run.is_some() || freed
    }

    /// Frees a bot whose task `task` ended (no-op if it moved on).
    pub fn free_bot(&mut self, bot_id: &str, task: TaskId, now: Time) -> Option<BotInfo> {
        let e = self.bots.get_mut(bot_id)?;
        if e.info.task_id != Some(task) {
            return None;
        }
        e.info.task_id = None;
        e.info.task_name.clear();
        e.info.idle_since = Some(now);
        Some(e.info.clone())
    }

    /// Takes a parked bot able to serve `entry`, if any.
    pub fn take_waiter(&mut self, entry: &PendingEntry) -> Option<Waiter> {
        let q = self.index.queue_for(entry.dims());
        let chosen = if self.parked.len() <= self.index.queue_bot_count(q) {
            self.parked.keys().find(|b| self.index.bot_matches(b, q)).cloned()
        } else {
            self.index.queue_bots(q).find(|b| self.parked.contains_key(*b)).cloned()
        };
        chosen.and_then(|b| self.parked.remove(&b))
    }

    /// Records a committed claim in memory.
    pub fn record_claim(&mut self, result: &TaskResult, run: RunningEntry, request_uuid: &str) {
        if let Some(e) = self.bots.get_mut(&result.bot_id) {
            e.info.task_id = Some(result.id);
            e.info.task_name = result.name.clone();
            e.info.idle_since = None;
            e.last_poll = Some((request_uuid.to_string(), result.id));
        }
        self.timers.insert((run.dead_after, Timer::Running(result.id)));
        self.running.insert(result.id, run);
    }

    /// Forgets a running task that reached a final state.
    pub fn record_final(&mut self, result: &TaskResult, now: Time) -> Option<BotInfo> {
        self.running.remove(&result.id);
        self.free_bot(&result.bot_id, result.id, now)
    }
}

impl Scheduler {
    /// Puts a pending slice where it belongs: straight to a parked matching
    /// bot (the send happens after the lock is released), or into the index
    /// (with its expiry timer). If the parked poll went away meanwhile, the
    /// next one is tried.
    pub(crate) fn dispatch(&self, mut entry: PendingEntry) {
        loop {
            let waiter = {
                let mut st = self.state.lock();
                match st.take_waiter(&entry) {
                    Some(w) => w,
                    None => {
                        let deadline = entry.deadline();
                        let id = entry.id();
                        if st.index.insert(entry).is_some() {
                            st.timers.insert((deadline, Timer::Slice(id)));
                        }
                        return;
                    }
                }
            };
            match waiter.tx.send(Offer(entry)) {
                Ok(()) => return,
                Err(Offer(back)) => entry = back,
            }
        }
    }

    pub(crate) fn death_timeout(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.cfg.bot_death_timeout).unwrap_or_else(|_| chrono::Duration::seconds(600))
    }

    /// Adds this server's version to a result's `server_versions`.
    pub(crate) fn stamp(&self, r: &mut TaskResult, now: Time) {
        r.modified = now;
        if !r.server_versions.iter().any(|v| v == &self.cfg.server_version) {
            r.server_versions.push(self.cfg.server_version.clone());
            r.server_versions.sort();
        }
    }
}
