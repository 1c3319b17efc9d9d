//! task_update / task_error (docs/bot-protocol.md#task-updates, #task-errors) and every other way a
//! RUNNING task ends (abandon on bot death, handshake, shutdown, ping
//! timeout). A completion commits in ONE Txn: final result (+ dedup hash),
//! the freed bot record, output bytes and the bot event.

use crate::{Result, Scheduler, TaskErrorOp, TaskUpdateOp, TaskUpdateOutcome};
use muster_core::{BotEvent, TaskId, TaskResult, TaskState, Time};
use muster_store::{CommitOutcome, Txn, Write};

/// Why a running task is ended without the bot reporting completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Abandon {
    /// Bot died / restarted / stopped pinging: BOT_DIED (KILLED if killing).
    BotDied,
}

/// Result of trying to finalize a running task.
pub(crate) enum Finish {
    /// Committed; the new final result.
    Done(Box<TaskResult>),
    /// Not running on that bot (final already, or someone else's).
    NotRunning(Option<Box<TaskResult>>),
}

impl Scheduler {
    pub async fn task_update(&self, op: TaskUpdateOp, now: Time) -> Result<TaskUpdateOutcome> {
        let completion = op.exit_code.is_some() || op.canceled || op.hard_timeout || op.io_timeout;
        let death = self.death_timeout();
        // Fast path: ownership and liveness from memory.
        let known = {
            let mut st = self.state.lock();
            let seen = match st.running.get_mut(&op.task_id) {
                Some(r) if r.bot_id == op.bot_id => {
                    r.dead_after = now + chrono::Duration::seconds(r.tolerance_secs);
                    if let Some(c) = op.cost_usd {
                        r.cost_usd = r.cost_usd.max(c);
                    }
                    r.acked = true;
                    Some(r.killing)
                }
                Some(_) => return Ok(TaskUpdateOutcome { ok: false, must_stop: true }),
                None => None,
            };
            if seen.is_some() {
                st.touch_bot(&op.bot_id, now, death);
            }
            seen
        };
        if !completion {
            let killing = match known {
                Some(k) => k,
                None => match self.store.get_result(op.task_id).await? {
                    Some(r) if r.state == TaskState::Running && r.bot_id == op.bot_id => r.killing,
                    _ => return Ok(TaskUpdateOutcome { ok: false, must_stop: true }),
                },
            };
            if let Some((offset, data)) = op.output {
                if !data.is_empty() {
                    self.store.commit(Txn::new().with(Write::WriteOutput { task: op.task_id, offset, data })).await?;
                }
            }
            return Ok(TaskUpdateOutcome { ok: true, must_stop: killing });
        }
        let mut extra = Vec::new();
        if let Some((offset, data)) = &op.output {
            if !data.is_empty() {
                extra.push(Write::WriteOutput { task: op.task_id, offset: *offset, data: data.clone() });
            }
        }
        let finished = self
            .finish(op.task_id, &op.bot_id, now, extra, |r, run_cost, dedup| {
                let killing = r.killing;
                r.cost_usd = r.cost_usd.max(run_cost).max(op.cost_usd.unwrap_or(0.0));
                r.completed = Some(now);
                r.dead_after = None;
                if let Some(p) = &op.performance_stats {
                    r.performance_stats = Some(p.clone());
                }
                if let Some(c) = &op.cas_output_root {
                    r.cas_output_root = Some(c.clone());
                }
                if let Some(c) = &op.cipd_pins {
                    r.cipd_pins = Some(c.clone());
                }
                let fallback = r.started.map(|s| muster_core::time::secs_between(s, now));
                if op.canceled {
                    r.state = TaskState::Canceled;
                    r.exit_code = None;
                    r.duration = None;
                    r.abandoned = r.abandoned.or(Some(now));
                } else if op.hard_timeout || op.io_timeout {
                    r.state = TaskState::TimedOut;
                    r.exit_code = Some(op.exit_code.unwrap_or(-1));
                    r.duration = op.duration.or(fallback);
                    r.failure = true;
                } else if killing {
                    r.state = TaskState::Killed;
                    r.exit_code = Some(op.exit_code.unwrap_or(-1));
                    r.duration = op.duration.or(fallback);
                    r.failure = r.exit_code != Some(0);
                    r.abandoned = r.abandoned.or(Some(now));
                } else {
                    r.state = TaskState::Completed;
                    r.exit_code = op.exit_code;
                    r.duration = op.duration.or(fallback);
                    r.failure = op.exit_code.unwrap_or(0) != 0;
                    if !r.failure && !r.internal_failure {
                        r.dedup_hash = dedup;
                    }
                }
                match r.state {
                    TaskState::Killed => "task_killed",
                    _ => "task_completed",
                }
            })
            .await?;
        Ok(match finished {
            Finish::Done(r) => TaskUpdateOutcome { ok: true, must_stop: r.killing },
            // A retried final packet from the same bot: accepted, no change.
            Finish::NotRunning(Some(r))
                if r.bot_id == op.bot_id
                    && matches!(
                        r.state,
                        TaskState::Completed | TaskState::TimedOut | TaskState::Killed | TaskState::Canceled
                    ) =>
            {
                TaskUpdateOutcome { ok: true, must_stop: r.killing }
            }
            Finish::NotRunning(_) => TaskUpdateOutcome { ok: false, must_stop: true },
        })
    }

    /// The bot could not run the task. The run ends (BOT_DIED, CLIENT_ERROR
    /// or KILLED) with the bot's message appended to the task's output and
    /// kept as the message of the bot's `task_error` event, so a user sees
    /// why (docs/bot-protocol.md#task-errors).
    pub async fn task_error(&self, op: TaskErrorOp, now: Time) -> Result<()> {
        let client_error = !op.missing_cas.is_empty() || !op.missing_cipd.is_empty();
        let message = if op.message.trim().is_empty() { "no reason given" } else { op.message.trim() };
        let mut extra = Vec::new();
        let owned = self
            .store
            .get_result(op.task_id)
            .await?
            .is_some_and(|r| r.state == TaskState::Running && r.bot_id == op.bot_id);
        if owned {
            let (offset, ends_with_newline) = self.output_end(op.task_id).await?;
            let sep = if ends_with_newline { "" } else { "\n" };
            let line = format!("{sep}muster: the bot {} could not run the task: {message}\n", op.bot_id);
            extra.push(Write::WriteOutput { task: op.task_id, offset, data: line.into_bytes() });
        }
        self.finish_with_message(op.task_id, &op.bot_id, now, extra, message, |r, run_cost, _| {
            r.cost_usd = r.cost_usd.max(run_cost);
            r.completed = Some(now);
            r.dead_after = None;
            r.exit_code = Some(r.exit_code.unwrap_or(-1));
            r.duration = r.duration.or(r.started.map(|s| muster_core::time::secs_between(s, now)));
            if r.killing {
                r.state = TaskState::Killed;
                r.failure = true;
                r.abandoned = r.abandoned.or(Some(now));
            } else if client_error {
                r.state = TaskState::ClientError;
                r.internal_failure = true;
                r.missing_cas = op.missing_cas.clone();
                r.missing_cipd = op.missing_cipd.clone();
                r.abandoned = Some(now);
            } else {
                r.state = TaskState::BotDied;
                r.internal_failure = true;
                r.abandoned = Some(now);
            }
            "task_error"
        })
        .await?;
        Ok(())
    }

    /// Ends a running task the bot will never report on. Returns whether a
    /// change was committed.
    pub(crate) async fn abandon(
        &self,
        task: TaskId,
        bot_id: &str,
        why: Abandon,
        _msg: &str,
        now: Time,
    ) -> Result<bool> {
        let Abandon::BotDied = why;
        let out = self
            .finish(task, bot_id, now, Vec::new(), |r, run_cost, _| {
                r.cost_usd = r.cost_usd.max(run_cost);
                r.completed = Some(now);
                r.dead_after = None;
                r.exit_code = Some(r.exit_code.unwrap_or(-1));
                r.duration = r.duration.or(r.started.map(|s| muster_core::time::secs_between(s, now)));
                if r.killing {
                    r.state = TaskState::Killed;
                    r.failure = true;
                    r.abandoned = r.abandoned.or(Some(now));
                } else {
                    r.state = TaskState::BotDied;
                    r.internal_failure = true;
                    r.abandoned = Some(now);
                }
                ""
            })
            .await?;
        if !matches!(out, Finish::Done(_)) {
            // Whatever memory said, the task is not running on this bot.
            let mut st = self.state.lock();
            if st.running.get(&task).is_some_and(|r| r.bot_id == bot_id) {
                st.running.remove(&task);
            }
            st.free_bot(bot_id, task, now);
        }
        Ok(matches!(out, Finish::Done(_)))
    }

    /// The length of a task's output and whether it is empty or ends with a
    /// newline. Output has no stored length: found by halving, one byte read
    /// per step (rare: only when a message is appended).
    async fn output_end(&self, task: TaskId) -> Result<(u64, bool)> {
        let has_byte_at = |off: u64| async move { self.store.read_output(task, off, 1).await.map(|b| !b.is_empty()) };
        let cap = muster_store::OUTPUT_CHUNK_SIZE * muster_store::OUTPUT_MAX_CHUNKS;
        // Invariant: a byte at lo - 1 (or lo == 0), none at hi.
        let (mut lo, mut hi) = (0u64, cap);
        if has_byte_at(cap - 1).await? {
            return Ok((cap, true));
        }
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if has_byte_at(mid).await? {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == 0 {
            return Ok((0, true));
        }
        let last = self.store.read_output(task, lo - 1, 1).await?;
        Ok((lo, last.first() == Some(&b'\n')))
    }

    /// [`Self::finish_with_message`] with no event message.
    pub(crate) async fn finish<F>(
        &self,
        task: TaskId,
        bot_id: &str,
        now: Time,
        extra: Vec<Write>,
        f: F,
    ) -> Result<Finish>
    where
        F: Fn(&mut TaskResult, f64, Option<String>) -> &'static str,
    {
        self.finish_with_message(task, bot_id, now, extra, "", f).await
    }

    /// CAS loop finalizing a task RUNNING on `bot_id`. `f` turns the stored
    /// result into the final one (given the in-memory cost and dedup hash)
    /// and names the bot event to append ("" for none), recorded with
    /// `message`.
    pub(crate) async fn finish_with_message<F>(
        &self,
        task: TaskId,
        bot_id: &str,
        now: Time,
        extra: Vec<Write>,
        message: &str,
        f: F,
    ) -> Result<Finish>
    where
        F: Fn(&mut TaskResult, f64, Option<String>) -> &'static str,
    {
        for _ in 0..16 {
            let Some(current) = self.store.get_result(task).await? else { return Ok(Finish::NotRunning(None)) };
            if current.state != TaskState::Running || current.bot_id != bot_id {
                return Ok(Finish::NotRunning(Some(Box::new(current))));
            }
            let (run, bot) = {
                let st = self.state.lock();
                let run = st.running.get(&task);
                let bot = st.bots.get(bot_id).filter(|e| e.info.task_id == Some(task)).map(|e| {
                    let mut b = e.info.clone();
                    b.task_id = None;
                    b.task_name.clear();
                    b.idle_since = Some(now);
                    b
                });
                (run.map(|r| (r.cost_usd, r.dedup_hash.clone())), bot)
            };
            let (run_cost, dedup) = match run {
                Some(r) => r,
                // Claimed by another replica and not absorbed here yet.
                None => match self.store.get_request(task).await? {
                    Some(req) => (0.0, crate::rebuild::dedup_hash_of(&req, current.current_slice.max(0) as usize)),
                    None => (0.0, None),
                },
            };
            let mut next = current.clone();
            let event = f(&mut next, run_cost, dedup);
            self.stamp(&mut next, now);
            let mut txn = Txn::new();
            for w in &extra {
                txn.push(w.clone());
            }
            txn.push(Write::UpdateResult(Box::new(next.clone())));
            if let Some(b) = &bot {
                txn.push(Write::PutBot(Box::new(b.clone())));
                if !event.is_empty() {
                    let mut ev = BotEvent::of(b, now, event, message);
                    ev.task_id = task.run_id();
                    txn.push(Write::AppendEvent(Box::new(ev)));
                }
            }
            match self.store.commit(txn).await? {
                CommitOutcome::Committed => {
                    next.version += 1;
                    self.state.lock().record_final(&next, now);
                    return Ok(Finish::Done(Box::new(next)));
                }
                CommitOutcome::Conflict { .. } => continue,
            }
        }
        Err(muster_core::Error::internal(format!("task {task}: too many concurrent updates")))
    }
}
