//! Per-caller limits on NewTask: a token-bucket rate and a quota on the
//! bytes of a caller's tasks still waiting for a bot (what a flood of large
//! requests would otherwise pile up in memory). Counted per server process;
//! the caller is [`super::caller_key`]. Over a limit the call fails with
//! RESOURCE_EXHAUSTED and a message saying which limit and when to retry.

use muster_api::prpc::{Code, Status};
use muster_core::{TaskId, Time};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Callers tracked before idle ones (full bucket, nothing pending) are dropped.
const MAX_IDLE_CALLERS: usize = 10_000;
/// Shortest time between two full re-checks of one caller's pending tasks.
const RECHECK_EVERY_MS: i64 = 1000;

#[derive(Debug)]
struct Usage {
    tokens: f64,
    refilled: Time,
    /// Tasks admitted and, at the last check, still pending, with their size.
    pending: Vec<(TaskId, u64)>,
    pending_bytes: u64,
    /// Bytes admitted whose NewTask has not finished yet.
    reserved: u64,
    rechecked: Option<Time>,
}

#[derive(Debug)]
pub(crate) struct Quotas {
    rate: f64,
    burst: f64,
    max_pending: u64,
    callers: Mutex<HashMap<String, Usage>>,
}

/// Bytes admitted for one NewTask; returned unless [`Reservation::commit`]ted.
#[must_use]
pub(crate) struct Reservation {
    quotas: Arc<Quotas>,
    caller: String,
    bytes: u64,
}

impl Quotas {
    pub(crate) fn new(cfg: &super::EdgeConfig) -> Quotas {
        Quotas {
            rate: cfg.new_task_rate.max(0.0),
            burst: f64::from(cfg.new_task_burst.max(1)),
            max_pending: cfg.pending_bytes_quota,
            callers: Mutex::new(HashMap::new()),
        }
    }

    /// Admits a NewTask of `bytes` from `caller` at `now`, or says which
    /// limit it is over. `still_pending` tells whether an earlier task of
    /// the caller still waits for a bot.
    pub(crate) fn admit(
        self: &Arc<Self>,
        caller: &str,
        bytes: u64,
        now: Time,
        still_pending: impl Fn(TaskId) -> bool,
    ) -> Result<Reservation, Status> {
        let mut callers = self.callers.lock().unwrap_or_else(|p| p.into_inner());
        if callers.len() > MAX_IDLE_CALLERS {
            let burst = self.burst;
            callers.retain(|_, u| u.reserved > 0 || !u.pending.is_empty() || u.tokens < burst);
        }
        let u = callers.entry(caller.to_string()).or_insert_with(|| Usage {
            tokens: self.burst,
            refilled: now,
            pending: Vec::new(),
            pending_bytes: 0,
            reserved: 0,
            rechecked: None,
        });
        if self.rate > 0.0 {
            let elapsed = (now - u.refilled).num_milliseconds().max(0) as f64 / 1000.0;
            u.tokens = (u.tokens + elapsed * self.rate).min(self.burst);
            u.refilled = now;
            if u.tokens < 1.0 {
                let wait = (1.0 - u.tokens) / self.rate;
                return Err(Status::new(
                    Code::ResourceExhausted,
                    format!(
                        "NewTask rate limit: {caller} may create {} tasks per second (bursts of {}); retry in {wait:.1}s",
                        self.rate, self.burst
                    ),
                ));
            }
        }
        if self.max_pending > 0 {
            let over = |u: &Usage| u.pending_bytes + u.reserved + bytes > self.max_pending;
            let recheck_due = u.rechecked.is_none_or(|t| (now - t).num_milliseconds() >= RECHECK_EVERY_MS);
            if over(u) && recheck_due {
                u.pending.retain(|(id, _)| still_pending(*id));
                u.pending_bytes = u.pending.iter().map(|(_, b)| b).sum();
                u.rechecked = Some(now);
            }
            if over(u) {
                return Err(Status::new(
                    Code::ResourceExhausted,
                    format!(
                        "pending-bytes quota: {caller} already has {} bytes of tasks waiting for a bot; \
                         this {bytes}-byte request would exceed the limit of {} bytes. \
                         Retry when some of them have started, or cancel some",
                        u.pending_bytes + u.reserved,
                        self.max_pending
                    ),
                ));
            }
        }
        if self.rate > 0.0 {
            u.tokens -= 1.0;
        }
        u.reserved += bytes;
        Ok(Reservation { quotas: self.clone(), caller: caller.to_string(), bytes })
    }
}

impl Reservation {
    /// The NewTask created (or found, on a retry) `task`; counts it while
    /// it is pending.
    pub(crate) fn commit(mut self, task: Option<TaskId>) {
        let bytes = std::mem::take(&mut self.bytes);
        let mut callers = self.quotas.callers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = callers.get_mut(&self.caller) {
            u.reserved = u.reserved.saturating_sub(bytes);
            if let Some(id) = task {
                if self.quotas.max_pending > 0 && !u.pending.iter().any(|(t, _)| *t == id) {
                    u.pending.push((id, bytes));
                    u.pending_bytes += bytes;
                }
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        let mut callers = self.quotas.callers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = callers.get_mut(&self.caller) {
            u.reserved = u.reserved.saturating_sub(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::EdgeConfig;

    fn t(ms: i64) -> Time {
        chrono::DateTime::from_timestamp_millis(1_700_000_000_000 + ms).expect("time")
    }

    fn quotas(rate: f64, burst: u32, max_pending: u64) -> Arc<Quotas> {
        let cfg = EdgeConfig {
            new_task_rate: rate,
            new_task_burst: burst,
            pending_bytes_quota: max_pending,
            ..Default::default()
        };
        Arc::new(Quotas::new(&cfg))
    }

    #[test]
    fn the_rate_allows_a_burst_then_refills() {
        let q = quotas(2.0, 3, 0);
        for _ in 0..3 {
            q.admit("a", 10, t(0), |_| true).expect("within burst").commit(None);
        }
        let e = q.admit("a", 10, t(0), |_| true).err().expect("over the rate");
        assert_eq!(e.code, Code::ResourceExhausted);
        assert!(e.message.contains("rate limit"), "{}", e.message);
        // Another caller has its own bucket.
        q.admit("b", 10, t(0), |_| true).expect("other caller").commit(None);
        // Half a second later one token is back.
        q.admit("a", 10, t(500), |_| true).expect("refilled").commit(None);
        assert!(q.admit("a", 10, t(500), |_| true).is_err());
    }

    #[test]
    fn pending_bytes_are_limited_until_tasks_leave_pending() {
        let q = quotas(0.0, 1, 100);
        let id = |n: i64| TaskId(n);
        q.admit("a", 60, t(0), |_| true).expect("first").commit(Some(id(1)));
        // A retry of the same NewTask (same task) is not counted twice.
        q.admit("a", 0, t(0), |_| true).expect("retry").commit(Some(id(1)));
        let e = q.admit("a", 60, t(0), |_| true).err().expect("over quota");
        assert!(e.message.contains("pending-bytes quota"), "{}", e.message);
        // Still pending a second later: still refused.
        assert!(q.admit("a", 60, t(1000), |_| true).is_err());
        // Once task 1 started, its bytes are released.
        q.admit("a", 60, t(2000), |t| t != id(1)).expect("released").commit(Some(id(2)));
    }

    #[test]
    fn an_unfinished_reservation_counts_and_a_dropped_one_is_returned() {
        let q = quotas(0.0, 1, 100);
        let r = q.admit("a", 80, t(0), |_| true).expect("first");
        assert!(q.admit("a", 80, t(0), |_| true).is_err(), "the in-flight request counts");
        drop(r);
        q.admit("a", 80, t(0), |_| true).expect("returned").commit(None);
    }
}
