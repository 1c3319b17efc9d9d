//! Poll (docs/bot-protocol.md#poll; docs/scheduling.md#poll): update the bot, answer a
//! retried poll with the same assignment, pick the best pending slice among
//! the bot's queues, claim it durably (CAS PENDING → RUNNING + bot record in
//! one Txn) before replying, or park the poll until a matching task arrives.
//!
//! Unacknowledged assignment: if a bot polls with a NEW request_uuid while a
//! task it was given has not seen a single task_update, the same manifest is
//! handed back (the reply was lost; the task never started). If the bot did
//! send updates for it, the task is abandoned (BOT_DIED) and the poll goes on
//! — unless it reported within `LIVE_TASK_WINDOW`: then another process of
//! the same bot id still runs it, and the poll is answered `sleep`.

use crate::index::PendingEntry;
use crate::rebuild::running_entry;
use crate::state::{Offer, Waiter};
use crate::task_update::Abandon;
use crate::{BotHello, PollOutcome, Result, Scheduler};
use muster_core::{BotEvent, BotInfo, TaskId, TaskResult, TaskState, Time};
use muster_store::{CommitOutcome, Txn, Write};
use tokio::sync::oneshot;

/// What one claim attempt did.
enum Claim {
    Won(PollOutcome),
    /// Still pending but not claimable now (e.g. CAS raced): put it back.
    Retry(PendingEntry),
    /// No longer pending (claimed elsewhere, canceled, expired): drop it.
    Lost,
}

/// What the bot's current assignment means for this poll.
enum Assigned {
    None,
    Redeliver(TaskId),
    Abandon(TaskId),
    /// Another process of this bot id is still running its task.
    Busy,
}

/// Unregisters a parked poll when the poll future goes away (e.g. the HTTP
/// request was dropped); an offer already in its channel is re-dispatched.
struct ParkGuard<'a> {
    sched: &'a Scheduler,
    bot_id: String,
    generation: u64,
    rx: Option<oneshot::Receiver<Offer>>,
}

impl Drop for ParkGuard<'_> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else { return };
        {
            let mut st = self.sched.state.lock();
            if st.parked.get(&self.bot_id).is_some_and(|w| w.generation == self.generation) {
                st.parked.remove(&self.bot_id);
            }
        }
        if let Ok(Offer(entry)) = rx.try_recv() {
            self.sched.dispatch(entry);
        }
    }
}

impl Scheduler {
    /// Finds work for a bot, parking up to `long_poll`. Idempotent by
    /// `request_uuid`: a retried poll gets the same assignment.
    pub async fn poll(&self, hello: BotHello, request_uuid: &str, now: Time) -> Result<PollOutcome> {
        let started = tokio::time::Instant::now();
        let deadline = started + self.cfg.long_poll;
        let bot_id = hello.bot_id.clone();
        if self.arrived_from_elsewhere(&bot_id) {
            self.adopt_running(&bot_id, now).await?;
        }
        let (assigned, unavailable) = {
            let mut st = self.state.lock();
            st.apply_hello(&hello, now, self.death_timeout());
            let mut assigned = Assigned::None;
            if let Some(e) = st.bots.get(&bot_id) {
                if let Some(task) = e.info.task_id {
                    let same_uuid = e.last_poll.as_ref().is_some_and(|(u, t)| u == request_uuid && *t == task);
                    let acked = st.running.get(&task).is_none_or(|r| r.acked);
                    assigned = if same_uuid || !acked {
                        Assigned::Redeliver(task)
                    } else if st.task_live(task, now) {
                        Assigned::Busy
                    } else {
                        Assigned::Abandon(task)
                    };
                }
            }
            let unavailable = st
                .bots
                .get(&bot_id)
                .is_some_and(|e| e.info.quarantined() || e.info.in_maintenance() || st.drain_of(&e.info).is_some());
            (assigned, unavailable)
        };
        match assigned {
            Assigned::None => {}
            Assigned::Redeliver(task) => {
                if let Some(out) = self.redeliver(&bot_id, task, request_uuid).await? {
                    return Ok(out);
                }
            }
            Assigned::Abandon(task) => {
                self.abandon(task, &bot_id, Abandon::BotDied, "bot polled for a new task", now).await?;
            }
            Assigned::Busy => return Ok(self.sleep()),
        }
        if unavailable {
            return Ok(PollOutcome::Sleep { duration: self.cfg.idle_sleep, quarantined: true });
        }
        loop {
            let elapsed = chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
            let now = now + elapsed;
            // Find the best candidate, or park, in one critical section so a
            // task inserted in between cannot be missed.
            let mut expired: Vec<PendingEntry> = Vec::new();
            let found = {
                let mut st = self.state.lock();
                let mut found = None;
                while let Some(entry) = st.index.pop_best(&bot_id, now) {
                    if entry.deadline() <= now {
                        expired.push(entry);
                        continue;
                    }
                    found = Some(entry);
                    break;
                }
                match found {
                    Some(e) => Ok(e),
                    // Shutting down: answer at once instead of parking.
                    None if st.closing => Err(None),
                    None => {
                        let (tx, rx) = oneshot::channel();
                        st.next_generation += 1;
                        let generation = st.next_generation;
                        st.parked.insert(bot_id.clone(), Waiter { generation, tx });
                        Err(Some(ParkGuard { sched: self, bot_id: bot_id.clone(), generation, rx: Some(rx) }))
                    }
                }
            };
            for e in expired {
                self.expire_slice(e, now).await?;
            }
            let entry = match found {
                Ok(entry) => entry,
                Err(None) => return Ok(self.sleep()),
                Err(Some(mut guard)) => {
                    let Some(rx) = guard.rx.as_mut() else { continue };
                    match tokio::time::timeout_at(deadline, &mut *rx).await {
                        Ok(Ok(Offer(entry))) => {
                            guard.rx = None;
                            entry
                        }
                        Ok(Err(_)) => {
                            // Sender dropped without an offer: a newer poll
                            // of the same bot replaced this one, or the bot
                            // was deleted. Re-parking would evict the newer
                            // poll in turn, so answer sleep.
                            guard.rx = None;
                            return Ok(self.sleep());
                        }
                        Err(_) => {
                            // Deadline. Unregister; if our sender was already
                            // taken, an offer may be on its way: wait for it.
                            let still_parked = {
                                let mut st = self.state.lock();
                                let mine = st.parked.get(&bot_id).is_some_and(|w| w.generation == guard.generation);
                                if mine {
                                    st.parked.remove(&bot_id);
                                }
                                mine
                            };
                            let rx = guard.rx.take();
                            if still_parked {
                                return Ok(self.sleep());
                            }
                            match rx {
                                Some(rx) => match rx.await {
                                    Ok(Offer(entry)) => entry,
                                    Err(_) => return Ok(self.sleep()),
                                },
                                None => return Ok(self.sleep()),
                            }
                        }
                    }
                }
            };
            let elapsed = chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
            let now = now + elapsed;
            if entry.deadline() <= now {
                self.expire_slice(entry, now).await?;
                continue;
            }
            match self.claim(&bot_id, entry, request_uuid, now).await {
                Ok(Claim::Won(out)) => return Ok(out),
                Ok(Claim::Retry(entry)) => self.dispatch(entry),
                Ok(Claim::Lost) => {}
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(self.sleep());
            }
        }
    }

    fn sleep(&self) -> PollOutcome {
        PollOutcome::Sleep { duration: self.cfg.idle_sleep, quarantined: false }
    }

    fn outcome_of(request: muster_core::TaskRequest, result: TaskResult) -> PollOutcome {
        if request.is_termination() {
            PollOutcome::Terminate { task_id: result.id }
        } else {
            PollOutcome::Run { request: Box::new(request), result: Box::new(result) }
        }
    }

    /// Hands back the task already assigned to this bot, if it still runs
    /// there.
    async fn redeliver(&self, bot_id: &str, task: TaskId, request_uuid: &str) -> Result<Option<PollOutcome>> {
        let result = self.store.get_result(task).await?;
        let request = self.store.get_request(task).await?;
        match (request, result) {
            (Some(req), Some(res)) if res.state == TaskState::Running && res.bot_id == bot_id => {
                let mut st = self.state.lock();
                if let Some(e) = st.bots.get_mut(bot_id) {
                    e.last_poll = Some((request_uuid.to_string(), task));
                }
                Ok(Some(Self::outcome_of(req, res)))
            }
            _ => {
                // Stale: the task is no longer this bot's.
                let mut st = self.state.lock();
                if let Some(e) = st.bots.get_mut(bot_id) {
                    if e.info.task_id == Some(task) {
                        e.info.task_id = None;
                        e.info.task_name.clear();
                    }
                }
                Ok(None)
            }
        }
    }

    /// Commits the claim of `entry` by `bot_id`.
    async fn claim(&self, bot_id: &str, entry: PendingEntry, request_uuid: &str, now: Time) -> Result<Claim> {
        let id = entry.id();
        let current = match self.store.get_result(id).await {
            Ok(r) => r,
            Err(e) => {
                self.dispatch(entry);
                return Err(e.into());
            }
        };
        let Some(current) = current else { return Ok(Claim::Lost) };
        if current.state != TaskState::Pending || current.current_slice != entry.slice as i32 {
            return Ok(Claim::Lost);
        }
        let bot: Option<BotInfo> = self.state.lock().bots.get(bot_id).map(|e| e.info.clone());
        let Some(mut bot) = bot else { return Ok(Claim::Retry(entry)) };
        let req = &entry.request;
        let tolerance = chrono::Duration::seconds(req.bot_ping_tolerance_secs.max(1) as i64);
        let mut next = current.clone();
        next.state = TaskState::Running;
        next.bot_id = bot_id.to_string();
        next.bot_dimensions = bot.dimensions.clone();
        next.bot_version = bot.version.clone();
        next.bot_idle_since = bot.idle_since;
        next.claim_id = request_uuid.to_string();
        next.started = Some(now);
        next.dead_after = Some(now + tolerance);
        next.try_number = Some(1);
        self.stamp(&mut next, now);
        bot.task_id = Some(id);
        bot.task_name = req.name.clone();
        bot.idle_since = None;
        let terminate = req.is_termination();
        if terminate {
            bot.termination_task_id = id.summary_id();
        }
        let mut ev = BotEvent::of(&bot, now, if terminate { "bot_terminate" } else { "request_task" }, "");
        ev.task_id = id.run_id();
        let txn = Txn::new()
            .with(Write::UpdateResult(Box::new(next.clone())))
            .with(Write::PutBot(Box::new(bot.clone())))
            .with(Write::AppendEvent(Box::new(ev)));
        match self.store.commit(txn).await {
            Ok(CommitOutcome::Committed) => {
                next.version += 1;
                let run = running_entry(req, &next, now + tolerance);
                let mut run = run;
                run.acked = false;
                {
                    let mut st = self.state.lock();
                    if let Some(e) = st.bots.get_mut(bot_id) {
                        e.info.termination_task_id = bot.termination_task_id.clone();
                    }
                    st.record_claim(&next, run, request_uuid);
                    let q = st.index.queue_for(entry.dims());
                    st.note_dispatch(q, now);
                }
                Ok(Claim::Won(Self::outcome_of((*entry.request).clone(), next)))
            }
            Ok(CommitOutcome::Conflict { .. }) => {
                let again = self.store.get_result(id).await?;
                match again {
                    Some(r) if r.state == TaskState::Pending && r.current_slice == entry.slice as i32 => {
                        Ok(Claim::Retry(entry))
                    }
                    _ => Ok(Claim::Lost),
                }
            }
            Err(e) => {
                self.dispatch(entry);
                Err(e.into())
            }
        }
    }
}
