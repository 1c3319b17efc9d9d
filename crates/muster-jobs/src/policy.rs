//! Triggering policies: how pending triggers become invocations (pure).
//!
//! Common part: no triggers, or no free slot (`max_concurrent_invocations`
//! minus running invocations), means nothing. While there are slots and
//! triggers, the policy picks how many of the oldest triggers go into the next
//! invocation (capped by `max_batch_size`).
//! - `GREEDY_BATCHING` (the default): all of them.
//! - `LOGARITHMIC_BATCHING`: floor(log_base(N)), at least 1.
//! - `NEWEST_FIRST`: triggers pending longer than `pending_timeout` are
//!   discarded, then one invocation per trigger, newest first.

use chrono::Duration;
use muster_core::Time;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PolicyKind {
    #[default]
    GreedyBatching,
    LogarithmicBatching,
    NewestFirst,
}

impl PolicyKind {
    pub fn parse(s: &str) -> Result<PolicyKind, String> {
        match s {
            "" | "UNDEFINED" | "GREEDY_BATCHING" => Ok(PolicyKind::GreedyBatching),
            "LOGARITHMIC_BATCHING" => Ok(PolicyKind::LogarithmicBatching),
            "NEWEST_FIRST" => Ok(PolicyKind::NewestFirst),
            other => Err(format!(
                "unknown triggering policy kind {other:?} (GREEDY_BATCHING, LOGARITHMIC_BATCHING or NEWEST_FIRST)"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub kind: PolicyKind,
    pub max_concurrent_invocations: usize,
    pub max_batch_size: usize,
    pub log_base: f64,
    pub pending_timeout_secs: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            kind: PolicyKind::GreedyBatching,
            max_concurrent_invocations: 1,
            max_batch_size: 1000,
            log_base: 0.0,
            pending_timeout_secs: 7 * 24 * 3600,
        }
    }
}

impl Policy {
    /// Checks the numbers (0 means "default" and is replaced).
    pub fn normalized(mut self) -> Result<Policy, String> {
        let d = Policy::default();
        if self.max_concurrent_invocations == 0 {
            self.max_concurrent_invocations = d.max_concurrent_invocations;
        }
        if self.max_batch_size == 0 {
            self.max_batch_size = d.max_batch_size;
        }
        if self.pending_timeout_secs < 0 {
            return Err("pending_timeout must not be negative".into());
        }
        if self.pending_timeout_secs == 0 {
            self.pending_timeout_secs = d.pending_timeout_secs;
        }
        if self.kind == PolicyKind::LogarithmicBatching && self.log_base < 1.0001 {
            return Err("LOGARITHMIC_BATCHING needs log_base >= 1.0001".into());
        }
        Ok(self)
    }
}

/// A pending trigger as the policy sees it (sorted oldest first).
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub id: String,
    pub created: Time,
}

/// The policy's decision: invocations to create (each a list of trigger
/// indices, oldest first) and triggers to drop.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub invocations: Vec<Vec<usize>>,
    pub discard: Vec<usize>,
}

/// Runs the policy. `triggers` must be sorted oldest first.
pub fn triage(p: &Policy, now: Time, active: usize, triggers: &[Pending]) -> Decision {
    let mut d = Decision::default();
    let mut slots = p.max_concurrent_invocations.saturating_sub(active);
    if triggers.is_empty() {
        return d;
    }
    match p.kind {
        PolicyKind::NewestFirst => {
            let timeout = Duration::seconds(p.pending_timeout_secs);
            let mut live = Vec::new();
            for (i, t) in triggers.iter().enumerate() {
                if now - t.created >= timeout {
                    d.discard.push(i);
                } else {
                    live.push(i);
                }
            }
            while slots > 0 {
                let Some(i) = live.pop() else { break };
                d.invocations.push(vec![i]);
                slots -= 1;
            }
        }
        PolicyKind::GreedyBatching | PolicyKind::LogarithmicBatching => {
            let mut next = 0;
            while slots > 0 && next < triggers.len() {
                let n = triggers.len() - next;
                let want = match p.kind {
                    PolicyKind::LogarithmicBatching => {
                        ((n as f64).ln() / p.log_base.ln()).floor().clamp(1.0, n as f64) as usize
                    }
                    _ => n,
                };
                let take = want.min(p.max_batch_size).max(1);
                d.invocations.push((next..next + take).collect());
                next += take;
                slots -= 1;
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn pend(n: usize) -> Vec<Pending> {
        (0..n)
            .map(|i| Pending {
                id: format!("t{i}"),
                created: Utc.timestamp_opt(1_000 + i as i64, 0).single().expect("valid"),
            })
            .collect()
    }
    fn now() -> Time {
        Utc.timestamp_opt(10_000, 0).single().expect("valid")
    }

    #[test]
    fn greedy_takes_everything_in_one_invocation_per_slot() {
        let p = Policy::default();
        assert_eq!(triage(&p, now(), 0, &pend(5)).invocations, vec![vec![0, 1, 2, 3, 4]]);
        assert_eq!(triage(&p, now(), 1, &pend(5)), Decision::default(), "no free slot: wait");
        let p = Policy { max_concurrent_invocations: 3, max_batch_size: 2, ..Policy::default() };
        assert_eq!(triage(&p, now(), 0, &pend(5)).invocations, vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert_eq!(triage(&p, now(), 2, &pend(5)).invocations, vec![vec![0, 1]]);
    }

    #[test]
    fn logarithmic_base_2_of_8_is_3() {
        let p = Policy { kind: PolicyKind::LogarithmicBatching, log_base: 2.0, ..Policy::default() }
            .normalized()
            .expect("ok");
        assert_eq!(triage(&p, now(), 0, &pend(8)).invocations, vec![vec![0, 1, 2]]);
        assert_eq!(triage(&p, now(), 0, &pend(1)).invocations, vec![vec![0]]);
    }

    #[test]
    fn newest_first_drops_stale_and_runs_newest() {
        let p = Policy {
            kind: PolicyKind::NewestFirst,
            max_concurrent_invocations: 2,
            pending_timeout_secs: 9_000 - 1,
            ..Policy::default()
        };
        // Triggers created at 1000..1005; now 10000: 0 and 1 are ≥ 8999 s old.
        let d = triage(&p, now(), 0, &pend(6));
        assert_eq!(d.discard, vec![0, 1]);
        assert_eq!(d.invocations, vec![vec![5], vec![4]]);
    }

    #[test]
    fn bad_numbers_are_refused() {
        assert!(Policy { kind: PolicyKind::LogarithmicBatching, ..Policy::default() }.normalized().is_err());
        assert!(Policy { pending_timeout_secs: -1, ..Policy::default() }.normalized().is_err());
        assert!(PolicyKind::parse("FASTEST").is_err());
    }
}
