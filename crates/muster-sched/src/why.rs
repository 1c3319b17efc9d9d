//! "Why is my task pending?": an explanation computed from the in-memory
//! index and bot table, per slice — which bots match (and in which state),
//! which dimension rules most bots out when none matches, where the task
//! stands in the queues its bots serve, and when it may start at the rate
//! those bots have been taking work.
//!
//! Every text here is part of the contract (tests compare them exactly).

use crate::index::{PendingKey, QueueId};
use crate::state::{BotEntry, State};
use crate::{Result, Scheduler};
use muster_core::why::{BotCounts, SliceWhy, WhyPending};
use muster_core::{Error, TaskDimensions, TaskId, TaskRequest, TaskState, Time};
use std::collections::{BTreeMap, HashSet};

/// Dispatches remembered for the rate estimate.
pub(crate) const RATE_WINDOW_SECS: i64 = 600;
const MAX_REMEMBERED: usize = 100_000;

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

impl State {
    /// Remembers that a slice of queue `q` was handed to a bot at `now`.
    pub(crate) fn note_dispatch(&mut self, q: QueueId, now: Time) {
        let horizon = now - chrono::Duration::seconds(RATE_WINDOW_SECS);
        while self.dispatches.front().is_some_and(|(t, _)| *t < horizon) || self.dispatches.len() >= MAX_REMEMBERED {
            self.dispatches.pop_front();
        }
        self.dispatches.push_back((now, q));
    }

    fn classify(&self, e: &BotEntry, now: Time, c: &mut BotCounts) {
        c.matching += 1;
        if e.info.is_dead || now >= e.alive_until {
            c.dead += 1;
            return;
        }
        c.alive += 1;
        if e.info.quarantined() {
            c.quarantined += 1;
        } else if e.info.in_maintenance() || self.drain_of(&e.info).is_some() {
            c.drained += 1;
        } else if e.info.task_id.is_some() {
            c.busy += 1;
        } else {
            c.idle += 1;
        }
    }

    /// When no bot matches `dims`: the constraint whose removal lets the
    /// most bots match, and a sentence about it.
    fn limiting(&self, dims: &TaskDimensions) -> (String, String) {
        let mut best: Option<(usize, usize)> = None; // (constraint, bots matching the others)
        for j in 0..dims.0.len() {
            let others =
                TaskDimensions(dims.0.iter().enumerate().filter(|(i, _)| *i != j).map(|(_, p)| p.clone()).collect());
            let n = self.bots.values().filter(|e| e.info.dimensions.satisfies(&others)).count();
            if best.is_none_or(|(_, m)| n > m) {
                best = Some((j, n));
            }
        }
        let Some((j, _)) = best else { return (String::new(), "no bot is known".to_string()) };
        let (k, v) = &dims.0[j];
        let alone = TaskDimensions(vec![(k.clone(), v.clone())]);
        let anyone = self.bots.values().any(|e| e.info.dimensions.satisfies(&alone));
        let mut text = if anyone {
            format!("no bot with the other dimensions has {k}={v}")
        } else {
            format!("no bot has {k}={v}")
        };
        let others =
            TaskDimensions(dims.0.iter().enumerate().filter(|(i, _)| *i != j).map(|(_, p)| p.clone()).collect());
        let mut values: BTreeMap<&str, usize> = BTreeMap::new();
        for e in self.bots.values().filter(|e| e.info.dimensions.satisfies(&others)) {
            for w in e.info.dimensions.get(k) {
                *values.entry(w.as_str()).or_default() += 1;
            }
        }
        // The most common other value (ties: the first by name).
        if let Some((w, m)) = values.iter().fold(None::<(&str, usize)>, |acc, (w, m)| match acc {
            Some((_, best)) if best >= *m => acc,
            _ => Some((w, *m)),
        }) {
            let have = if m == 1 { "1 bot has".to_string() } else { format!("{m} bots have") };
            text.push_str(&format!("; {have} {k}={w}"));
        }
        (format!("{k}:{v}"), text)
    }

    fn explain_slice(&self, req: &TaskRequest, i: usize, active: bool, now: Time) -> SliceWhy {
        let dims = req.slices.get(i).map(|s| s.properties.dimensions.canonical()).unwrap_or_default();
        let mut bots = BotCounts::default();
        let mut queues: HashSet<QueueId> = HashSet::new();
        for (id, e) in &self.bots {
            if e.info.dimensions.satisfies(&dims) {
                self.classify(e, now, &mut bots);
                queues.extend(self.index.bot_queues(id).iter().copied());
            }
        }
        let key = PendingKey { priority: req.priority, created: req.created, id: req.id };
        let (queue_position, queue_length) =
            if active { self.index.queue_position(req.id).unwrap_or((0, 0)) } else { (0, 0) };
        let (ahead, higher_priority_ahead) = self.index.ahead_of(key, &queues);
        let recent = self.dispatches.iter().filter(|(_, q)| queues.contains(q)).count();
        let dispatches_per_minute = recent as f64 * 60.0 / RATE_WINDOW_SECS as f64;
        let estimated_start = if bots.idle > 0 {
            Some(now)
        } else if recent > 0 {
            let secs = (ahead + 1) as f64 * 60.0 / dispatches_per_minute;
            Some(now + chrono::Duration::milliseconds((secs * 1000.0) as i64))
        } else {
            None
        };
        let (limiting_dimension, summary) = if bots.matching == 0 {
            self.limiting(&dims)
        } else {
            (String::new(), summarize(&bots, ahead, higher_priority_ahead))
        };
        SliceWhy {
            index: i,
            active,
            dimensions: dims,
            bots,
            limiting_dimension,
            summary,
            queue_position,
            queue_length,
            ahead,
            higher_priority_ahead,
            dispatches_per_minute,
            estimated_start,
        }
    }
}

/// The sentence for a slice some bots match.
fn summarize(c: &BotCounts, ahead: usize, higher: usize) -> String {
    let usable = c.idle + c.busy;
    let all = |what: &str| {
        if c.matching == 1 {
            format!("the only matching bot is {what}")
        } else {
            format!("all {} matching bots are {what}", c.matching)
        }
    };
    if usable == 0 {
        let parts: Vec<String> = [(c.dead, "dead"), (c.quarantined, "quarantined"), (c.drained, "drained")]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        return match parts.as_slice() {
            [_] if c.dead > 0 => all("dead"),
            [_] if c.quarantined > 0 => all("quarantined"),
            [_] => all("drained"),
            _ => format!("none of the {} matching bots can run it: {}", c.matching, parts.join(", ")),
        };
    }
    if c.idle > 0 {
        return format!(
            "{} idle; it should start at their next poll",
            plural(c.idle, "matching bot is", "matching bots are")
        );
    }
    let mut s = if c.busy == c.matching {
        all("busy")
    } else {
        format!(
            "{} busy and {} cannot run it",
            plural(c.busy, "matching bot is", "matching bots are"),
            plural(c.matching - c.busy, "other", "others")
        )
    };
    if ahead > 0 {
        s.push_str(&format!("; {} ahead of it ({higher} of higher priority)", plural(ahead, "task is", "tasks are")));
    }
    s
}

impl Scheduler {
    /// Explains why a task is (or is not) pending.
    pub async fn why_pending(&self, id: TaskId, now: Time) -> Result<WhyPending> {
        let Some(result) = self.store.get_result(id).await? else {
            return Err(Error::not_found(format!("no task {}", id.summary_id())));
        };
        let request = self.store.get_request(id).await?;
        let current = result.current_slice.max(0) as usize;
        let mut why = WhyPending {
            task_id: id,
            state: result.state,
            summary: String::new(),
            current_slice: current,
            slices: vec![],
        };
        why.summary = match result.state {
            TaskState::Pending | TaskState::NoResource => String::new(),
            TaskState::Running => format!(
                "it is not pending: it is running on bot {} since {}",
                result.bot_id,
                result.started.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default()
            ),
            s => format!(
                "it is not pending: it ended {}{}",
                s.name(),
                result
                    .completed
                    .or(result.abandoned)
                    .map(|t| t.format(" at %Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default()
            ),
        };
        let Some(req) = request.filter(|_| matches!(result.state, TaskState::Pending | TaskState::NoResource)) else {
            return Ok(why);
        };
        let pending = result.state == TaskState::Pending;
        {
            let st = self.state.lock();
            why.slices =
                (0..req.slices.len()).map(|i| st.explain_slice(&req, i, pending && i == current, now)).collect();
        }
        why.summary = match (pending, why.slices.get(current)) {
            (true, Some(s)) => s.summary.clone(),
            (true, None) => "waiting".to_string(),
            (false, _) => {
                let reasons: Vec<&str> = why.slices.iter().map(|s| s.summary.as_str()).collect();
                format!("no bot could run it when it was created (NO_RESOURCE); now: {}", reasons.join(" / "))
            }
        };
        Ok(why)
    }
}
